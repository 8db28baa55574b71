#!/usr/bin/env bash
# Makes the test certificates with the tools users use: the custom-certificate
# guide's own openssl commands for the root CA and the CN-only server
# certificate, openssl for the rest, keytool for the JKS, openssl crl2pkcs7 for
# the P7B, and zip for the console-style download. Usage: gencerts.sh OUTDIR
# Nothing here touches the network. The tests run it into a temporary folder.
set -euo pipefail
out=${1:?usage: gencerts.sh OUTDIR}
mkdir -p "$out"
cd "$out"
q() { "$@" >/dev/null 2>&1 || { echo "gencerts: failed: $*" >&2; "$@"; exit 1; }; }

# 1. The guide's root CA, exactly as written there.
q openssl req -new -x509 -days 365 -nodes -out server-ca.crt -keyout server-ca.key -subj "/CN=root-ca"

# 2-3. The guide's CN-only server certificate (no SAN), for "localhost".
q openssl req -new -nodes -text -out cn.csr -keyout cn.key -subj "/CN=localhost"
q openssl x509 -req -in cn.csr -text -days 365 -CA server-ca.crt -CAkey server-ca.key -CAcreateserial -out cn.crt

# A certificate from the CA with SANs for every name the tests connect by.
# Its CN is deliberately not a connectable name: a SAN certificate is never
# matched on its CN.
sign() { # name subj extfile-lines
  local name=$1 subj=$2 ext=$3
  q openssl req -new -nodes -newkey rsa:2048 -out "$name.csr" -keyout "$name.key" -subj "$subj"
  printf '%b\n' "$ext" > "$name.ext"
  q openssl x509 -req -in "$name.csr" -days 365 -CA "${4:-server-ca.crt}" -CAkey "${5:-server-ca.key}" -CAcreateserial -extfile "$name.ext" -out "$name.crt"
}
sign san "/CN=sslconn-test-server" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth"

# From the CA, but for another host.
sign otherhost "/CN=other.example.com" "subjectAltName=DNS:other.example.com\nextendedKeyUsage=serverAuth"

# Another CA (a man in the middle) issuing a certificate for the right names.
q openssl req -new -x509 -days 365 -nodes -out other-ca.crt -keyout other-ca.key -subj "/CN=other-root-ca"
sign mitm "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" other-ca.crt other-ca.key

# An expired certificate from the CA: openssl ca can set dates in the past.
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<EOF
[ ca ]
default_ca = testca
[ testca ]
dir = ca-db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = server-ca.crt
private_key = server-ca.key
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
[ ext ]
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
EOF
q openssl req -new -nodes -newkey rsa:2048 -out expired.csr -keyout expired.key -subj "/CN=localhost"
q openssl ca -batch -config ca-db/ca.cnf -extensions ext -startdate 20200101000000Z -enddate 20210101000000Z -in expired.csr -out expired.crt -notext

# An expired CA (self-signed, valid in 2020 only) and a server certificate
# it issued that is valid now: only the CA is at fault. A P-256 key (made
# in milliseconds).
cat >> ca-db/ca.cnf <<EOF
[ v3ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
q openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout expired-ca.key -out expired-ca.csr -subj "/CN=expired-root-ca"
q openssl ca -batch -config ca-db/ca.cnf -selfsign -keyfile expired-ca.key -extensions v3ca -startdate 20200101000000Z -enddate 20210101000000Z -in expired-ca.csr -out expired-ca.crt -notext

# Server certificates that are wrong in one way each, all for the right
# names (SAN localhost, 127.0.0.1, ::1) and on the SAN certificate's key, so
# that no key is made and only the case at hand fails.
resign() { # name subj extfile-lines openssl-x509-args...
  local name=$1 subj=$2 ext=$3
  shift 3
  q openssl req -new -key san.key -out "$name.csr" -subj "$subj"
  printf '%b\n' "$ext" > "$name.ext"
  q openssl x509 -req -in "$name.csr" -days 365 -extfile "$name.ext" -out "$name.crt" "$@"
  cp san.key "$name.key"
}
names="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
fromca=(-CA server-ca.crt -CAkey server-ca.key -CAcreateserial)
# Extended key usage clientAuth only: not for a TLS server.
resign clientauth "/CN=sslconn-clientauth-only" "$names\nextendedKeyUsage=clientAuth" "${fromca[@]}"
# Signed with SHA-1: OpenSSL 3 signs it, and servers load it at SECLEVEL=0
# only (TLS.Weak).
resign sha1 "/CN=sslconn-sha1-signed" "$names\nextendedKeyUsage=serverAuth" "${fromca[@]}" -sha1
# A negative serial number (-1234): Go refuses to parse it since 1.23.
resign negserial "/CN=sslconn-negative-serial" "$names\nextendedKeyUsage=serverAuth" -CA server-ca.crt -CAkey server-ca.key -set_serial -1234
# Valid now, from the expired CA.
resign expiredca-server "/CN=sslconn-expired-ca-server" "$names\nextendedKeyUsage=serverAuth" -CA expired-ca.crt -CAkey expired-ca.key -set_serial 4242

# A client certificate for mutual TLS.
sign client "/CN=sslconn-client" "extendedKeyUsage=clientAuth"
# Its key encrypted, as `openssl pkey -aes256` (PKCS#8) and the older
# `openssl rsa -aes256 -traditional` (PEM with Proc-Type) write it.
q openssl pkey -in client.key -aes256 -passout pass:Key-Secret-pw1 -out client-pkcs8.key
q openssl rsa -in client.key -aes256 -traditional -passout pass:Key-Secret-pw1 -out client-legacy.key

# The console's CA download: PEM chain, JKS (password apsaradb), P7B, zip.
cp server-ca.crt ApsaraDB-CA-Chain.pem
q keytool -importcert -noprompt -alias root-ca -file server-ca.crt -keystore ApsaraDB-CA-Chain.jks -storepass apsaradb -storetype JKS
q openssl crl2pkcs7 -nocrl -certfile server-ca.crt -out ApsaraDB-CA-Chain.p7b
q openssl crl2pkcs7 -nocrl -certfile server-ca.crt -outform DER -out ApsaraDB-CA-Chain-der.p7b
q openssl x509 -in server-ca.crt -outform DER -out server-ca.der
q zip -q -j ApsaraDB-CA-Chain.zip ApsaraDB-CA-Chain.pem ApsaraDB-CA-Chain.jks ApsaraDB-CA-Chain.p7b
# The other CA's chain, for rotation tests.
cp other-ca.crt other-ca.pem
rm -f ./*.csr ./*.ext
chmod 644 ./*.key
echo "gencerts: certificates in $out"
