package integration

import (
	"context"
	"database/sql"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	entdialect "entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/sqlserver"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/sslconn"
)

// sslVersionQuery asks MariaDB for the TLS version of the session that runs
// it: run through an ORM, it proves that the ORM's own connection is
// encrypted, not merely some connection of the pool.
const sslVersionQuery = "SHOW SESSION STATUS LIKE 'Ssl_version'"

func checkTLSVersion(t *testing.T, name, version string) {
	t.Helper()
	if name != "Ssl_version" || !strings.HasPrefix(version, "TLSv1.") {
		t.Fatalf("the ORM's session reports %q=%q, want a TLS version", name, version)
	}
}

type gormItem struct {
	ID   uint `gorm:"primaryKey"`
	Name string
}

func (gormItem) TableName() string { return "gorm_items" }

// TestGORMMySQL: GORM on a *sql.DB from a mysqlssl connector built from
// the driver's own config, with a BeforeConnect hook supplying the password
// for every new connection (the RDS/Azure IAM token pattern): migrate,
// create, read, all over verified TLS.
func TestGORMMySQL(t *testing.T) {
	t.Parallel()
	c, s := certs.Get(t), mariadb.Get(t)
	ctx := testCtx(t)

	var tokens atomic.Int32
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.DBName, cfg.ParseTime = testenv.MySQLUser, "tcp", testenv.MySQLDatabase, true
	cfg.Addr = net.JoinHostPort("localhost", strconv.Itoa(s.Port))
	if err := cfg.Apply(mysql.BeforeConnect(func(_ context.Context, c *mysql.Config) error {
		tokens.Add(1)
		c.Passwd = testenv.MySQLPassword // a fresh IAM token, in production
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	connector, err := mysqlssl.NewConnectorFromConfig(cfg,
		sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(c.CA))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()

	gdb, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: db}),
		&gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	if err != nil {
		t.Fatal(err)
	}
	gdb = gdb.WithContext(ctx)
	if err := gdb.AutoMigrate(&gormItem{}); err != nil {
		t.Fatal(err)
	}
	if err := gdb.Create(&gormItem{Name: "widget"}).Error; err != nil {
		t.Fatal(err)
	}
	var got gormItem
	if err := gdb.Where("name = ?", "widget").First(&got).Error; err != nil || got.Name != "widget" {
		t.Fatalf("First: %+v %v", got, err)
	}
	var name, version string
	if err := gdb.Raw(sslVersionQuery).Row().Scan(&name, &version); err != nil {
		t.Fatal(err)
	}
	checkTLSVersion(t, name, version)
	if tokens.Load() == 0 {
		t.Fatal("the BeforeConnect hook never ran")
	}

	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	st, err := mysqlssl.Verify(ctx, sqlDB)
	checkEncrypted(t, st, err)
}

// TestGORMSQLServer: GORM's sqlserver dialector on the *sql.DB of
// mssqlssl.Open, against the TDS test server. gorm.Open pings ("select 1"),
// which the test server answers; the statements are raw SQL without
// parameters, because the test server answers SQL batches only (go-mssqldb
// sends parameterised queries as RPC calls).
func TestGORMSQLServer(t *testing.T) {
	t.Parallel()
	dsn := mssqlDSN(t)
	ctx := testCtx(t)

	db, err := mssqlssl.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gdb, err := gorm.Open(sqlserver.New(sqlserver.Config{Conn: db}),
		&gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	if err != nil {
		t.Fatal(err)
	}
	gdb = gdb.WithContext(ctx)

	var version string
	if err := gdb.Raw("SELECT @@VERSION").Scan(&version).Error; err != nil || !strings.Contains(version, "SQL Server") {
		t.Fatalf("SELECT @@VERSION: %q %v", version, err)
	}
	if err := gdb.Exec("INSERT INTO writes (id) VALUES (7)").Error; err != nil {
		t.Fatal(err)
	}
	var ids []int64
	if err := gdb.Raw("SELECT id FROM writes").Scan(&ids).Error; err != nil || !contains(ids, 7) {
		t.Fatalf("SELECT id FROM writes: %v %v", ids, err)
	}
	var enc string
	if err := gdb.Raw("SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&enc).Error; err != nil || enc != "TRUE" {
		t.Fatalf("GORM's session: encrypt_option=%q %v", enc, err)
	}

	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	st, err := mssqlssl.Verify(ctx, sqlDB)
	checkEncrypted(t, st, err)
}

func contains(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// TestSQLXMySQL: sqlx on the *sql.DB of mysqlssl.Open, named "mysql" so
// that sqlx binds "?" as MySQL does.
func TestSQLXMySQL(t *testing.T) {
	t.Parallel()
	dsn := mysqlDSN(t)
	ctx := testCtx(t)

	sqlDB, err := mysqlssl.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sqlx.NewDb(sqlDB, "mysql")
	defer db.Close()

	db.MustExecContext(ctx, "DROP TABLE IF EXISTS sqlx_items")
	db.MustExecContext(ctx, "CREATE TABLE sqlx_items (id INT PRIMARY KEY, name VARCHAR(64))")
	db.MustExecContext(ctx, db.Rebind("INSERT INTO sqlx_items (id, name) VALUES (?, ?), (?, ?)"), 1, "a", 2, "b")
	var names []string
	if err := db.SelectContext(ctx, &names, "SELECT name FROM sqlx_items WHERE id IN (?, ?) ORDER BY id", 1, 2); err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("Select: %v %v", names, err)
	}
	var status struct {
		Name  string `db:"Variable_name"`
		Value string `db:"Value"`
	}
	if err := db.GetContext(ctx, &status, sslVersionQuery); err != nil {
		t.Fatal(err)
	}
	checkTLSVersion(t, status.Name, status.Value)

	st, err := mysqlssl.Verify(ctx, db.DB)
	checkEncrypted(t, st, err)
}

// TestSQLXSQLServer: sqlx does not know the driver name "mssqlssl", so it
// would leave "?" unbound; sqlx.BindDriver("mssqlssl", sqlx.AT) tells it
// to bind as go-mssqldb does (@p1, @p2 ...). The test server answers SQL
// batches only, so the rebinding is checked on its output, and the
// queries sent are the ones without parameters.
var sqlxBound atomic.Bool

func TestSQLXSQLServer(t *testing.T) {
	t.Parallel()
	dsn := mssqlDSN(t)
	ctx := testCtx(t)

	// Unknown to sqlx until registered (checked once: with -count=2 the
	// second run finds the first's registration).
	if got := sqlx.BindType(mssqlssl.DriverName); got != sqlx.UNKNOWN && !sqlxBound.Load() {
		t.Fatalf("sqlx already binds %q as %d", mssqlssl.DriverName, got)
	}
	sqlx.BindDriver(mssqlssl.DriverName, sqlx.AT)
	sqlxBound.Store(true)

	db, err := sqlx.ConnectContext(ctx, mssqlssl.DriverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const want = "SELECT id FROM writes WHERE id = @p1 OR id = @p2"
	if got := db.Rebind("SELECT id FROM writes WHERE id = ? OR id = ?"); got != want {
		t.Fatalf("Rebind: %q, want %q", got, want)
	}
	q, args, err := sqlx.In("SELECT id FROM writes WHERE id IN (?)", []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := db.Rebind(q); got != "SELECT id FROM writes WHERE id IN (@p1, @p2, @p3)" || len(args) != 3 {
		t.Fatalf("sqlx.In + Rebind: %q %v", got, args)
	}

	var one int
	if err := db.GetContext(ctx, &one, "SELECT 1"); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d %v", one, err)
	}
	var enc string
	if err := db.GetContext(ctx, &enc, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID"); err != nil || enc != "TRUE" {
		t.Fatalf("sqlx's session: encrypt_option=%q %v", enc, err)
	}
	st, err := mssqlssl.Verify(ctx, db.DB)
	checkEncrypted(t, st, err)
}

type bunItem struct {
	bun.BaseModel `bun:"table:bun_items"`
	ID            int64 `bun:",pk,autoincrement"`
	Name          string
}

// TestBun: bun with its MySQL dialect on the *sql.DB of mysqlssl.Open.
func TestBun(t *testing.T) {
	t.Parallel()
	dsn := mysqlDSN(t)
	ctx := testCtx(t)

	sqlDB, err := mysqlssl.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := bun.NewDB(sqlDB, mysqldialect.New())
	defer db.Close()

	if _, err := db.NewDropTable().Model((*bunItem)(nil)).IfExists().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*bunItem)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	item := &bunItem{Name: "gadget"}
	if _, err := db.NewInsert().Model(item).Exec(ctx); err != nil || item.ID == 0 {
		t.Fatalf("insert: %+v %v", item, err)
	}
	var got bunItem
	if err := db.NewSelect().Model(&got).Where("name = ?", "gadget").Scan(ctx); err != nil || got.ID != item.ID {
		t.Fatalf("select: %+v %v", got, err)
	}
	var name, version string
	if err := db.NewRaw(sslVersionQuery).Scan(ctx, &name, &version); err != nil {
		t.Fatal(err)
	}
	checkTLSVersion(t, name, version)

	st, err := mysqlssl.Verify(ctx, db.DB)
	checkEncrypted(t, st, err)
}

// TestEnt: ent's SQL driver (what the generated client's sql.Driver
// option takes) on the *sql.DB of mysqlssl.Open, with raw statements
// through the driver, one in a transaction.
func TestEnt(t *testing.T) {
	t.Parallel()
	dsn := mysqlDSN(t)
	ctx := testCtx(t)

	sqlDB, err := mysqlssl.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	drv := entsql.OpenDB(entdialect.MySQL, sqlDB)
	defer drv.Close()

	if err := drv.Exec(ctx, "DROP TABLE IF EXISTS ent_items", []any{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := drv.Exec(ctx, "CREATE TABLE ent_items (id INT PRIMARY KEY, name VARCHAR(64))", []any{}, nil); err != nil {
		t.Fatal(err)
	}
	tx, err := drv.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Exec(ctx, "INSERT INTO ent_items (id, name) VALUES (?, ?)", []any{1, "gizmo"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var rows entsql.Rows
	if err := drv.Query(ctx, "SELECT name FROM ent_items WHERE id = ?", []any{1}, &rows); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := entsql.ScanSlice(rows, &names); err != nil || len(names) != 1 || names[0] != "gizmo" {
		t.Fatalf("ScanSlice: %v %v", names, err)
	}
	rows.Close()

	var status entsql.Rows
	if err := drv.Query(ctx, sslVersionQuery, []any{}, &status); err != nil {
		t.Fatal(err)
	}
	var name, version string
	if !status.Next() {
		t.Fatal("no Ssl_version row")
	}
	if err := status.Scan(&name, &version); err != nil {
		t.Fatal(err)
	}
	status.Close()
	checkTLSVersion(t, name, version)

	st, err := mysqlssl.Verify(ctx, drv.DB())
	checkEncrypted(t, st, err)
}
