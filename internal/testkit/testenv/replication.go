package testenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The account switchover tests write with: unlike MySQLUser (ALL
// PRIVILEGES, which include READ_ONLY ADMIN on MariaDB 10.11) a read-only
// node refuses its writes, as it does an application's.
const (
	MySQLWriter         = "writer"
	MySQLWriterPassword = "Writer-Secret-pw1"
)

// CatchUpTimeout bounds the wait for a replica to apply its primary's
// binary log (milliseconds when idle).
const CatchUpTimeout = 30 * time.Second

// Replication is a MariaDB primary and a replica, with GTID replication
// over loopback (plaintext: only the clients' TLS is under test), each
// node with its own TLS set-up. Switchover's steps are separate methods,
// so a test can run them in the order a cloud does, and the roles swap
// each time: Primary is always the writable node.
type Replication struct {
	Primary, Replica *Server
	mu               sync.Mutex
}

var serverIDs struct {
	sync.Mutex
	next int
}

func nextServerID() string {
	serverIDs.Lock()
	defer serverIDs.Unlock()
	serverIDs.next++
	return strconv.Itoa(serverIDs.next)
}

func replicationArgs() []string {
	return []string{"--log-bin=mysql-bin", "--server-id=" + nextServerID(), "--log-slave-updates",
		"--binlog-format=ROW", "--gtid-strict-mode=ON"}
}

// StartReplication starts two MariaDB nodes, the primary with primaryTLS
// and the replica (read-only) with replicaTLS, replicating from the
// primary, with the writer account and the table sslconn_test.writes
// (id BIGINT, no key: a write applied twice shows as two rows). Stop
// stops both (each Stop bounded).
func StartReplication(primaryTLS, replicaTLS TLS) (*Replication, error) {
	type res struct {
		s   *Server
		err error
	}
	var out [2]res
	var wg sync.WaitGroup
	for i, t := range []TLS{primaryTLS, replicaTLS} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := startMariaDB(nil, t, replicationArgs())
			out[i] = res{s, err}
		}()
	}
	wg.Wait()
	r := &Replication{Primary: out[0].s, Replica: out[1].s}
	if err := errors.Join(out[0].err, out[1].err); err != nil {
		r.Stop()
		return nil, err
	}
	setup := strings.Join([]string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", MySQLWriter, MySQLWriterPassword),
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON " + MySQLDatabase + ".* TO '" + MySQLWriter + "'@'%'",
		"CREATE TABLE " + MySQLDatabase + ".writes (id BIGINT NOT NULL)",
	}, ";\n") + ";"
	if err := r.follow(r.Replica, r.Primary); err != nil {
		r.Stop()
		return nil, err
	}
	if out, err := r.Primary.MySQL(setup); err != nil {
		r.Stop()
		return nil, fmt.Errorf("testenv: replication set-up: %v: %s", err, out)
	}
	if err := r.CatchUp(); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// follow makes replica replicate from primary, read-only.
func (r *Replication) follow(replica, primary *Server) error {
	sql := fmt.Sprintf("SET GLOBAL read_only=1; STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, "+
		"MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=current_pos, MASTER_CONNECT_RETRY=1; START SLAVE;",
		primary.Port, MySQLUser, MySQLPassword)
	if out, err := replica.MySQL(sql); err != nil {
		return fmt.Errorf("testenv: CHANGE MASTER on %s: %v: %s", replica.Name, err, out)
	}
	return nil
}

// SetReadOnly turns the primary read-only: the first step of a planned
// switchover. Writes in flight finish first; later ones are refused.
func (r *Replication) SetReadOnly() error {
	if out, err := r.Primary.MySQL("SET GLOBAL read_only=1"); err != nil {
		return fmt.Errorf("testenv: read_only on the primary: %v: %s", err, out)
	}
	return nil
}

// CatchUp waits, at most CatchUpTimeout, until the replica has applied
// everything the primary has written.
func (r *Replication) CatchUp() error {
	pos, err := r.Primary.MySQL("SELECT @@global.gtid_binlog_pos")
	if err != nil {
		return fmt.Errorf("testenv: gtid_binlog_pos: %v: %s", err, pos)
	}
	pos = strings.TrimSpace(pos)
	out, err := r.Replica.MySQL(fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %d)", pos, int(CatchUpTimeout.Seconds())))
	if err != nil || strings.TrimSpace(out) != "0" {
		status, _ := r.Replica.MySQL("SHOW SLAVE STATUS\\G")
		return fmt.Errorf("testenv: the replica did not reach %s within %v: %v %s\n%s", pos, CatchUpTimeout, err, out, status)
	}
	return nil
}

// Promote stops replication on the replica, makes it writable, and turns
// the old primary into its replica (read-only, following the new one);
// then the roles swap: Primary is the promoted node.
func (r *Replication) Promote() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if out, err := r.Replica.MySQL("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0;"); err != nil {
		return fmt.Errorf("testenv: promote %s: %v: %s", r.Replica.Name, err, out)
	}
	if err := r.follow(r.Primary, r.Replica); err != nil {
		return err
	}
	r.Primary, r.Replica = r.Replica, r.Primary
	return nil
}

// Switchover runs a planned switchover in the order a cloud does it: the
// primary turns read-only, the replica catches up and is promoted, and
// fwd moves to it, cutting the connections it had or not. It returns when
// the new primary is reachable through fwd.
func (r *Replication) Switchover(fwd *Forwarder, cut bool) error {
	if err := r.SetReadOnly(); err != nil {
		return err
	}
	if err := r.CatchUp(); err != nil {
		return err
	}
	if err := r.Promote(); err != nil {
		return err
	}
	fwd.Move(Addr(r.Primary.Port), cut)
	return nil
}

// Count returns how often each id is in the primary's writes table.
func (r *Replication) Count(ctx context.Context) (map[int64]int, error) {
	out, err := r.Primary.MySQL("SELECT id, COUNT(*) FROM " + MySQLDatabase + ".writes GROUP BY id")
	if err != nil {
		return nil, fmt.Errorf("testenv: count: %v: %s", err, out)
	}
	counts := map[int64]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("testenv: count: unexpected line %q", line)
		}
		id, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		counts[id] = n
	}
	return counts, ctx.Err()
}

// Stop stops both nodes, at once (each Stop bounded).
func (r *Replication) Stop() error {
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range []*Server{r.Primary, r.Replica} {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Stop() }()
	}
	wg.Wait()
	return errors.Join(errs[0], errs[1])
}
