# OpenBao server for the ddcc-mediator compose stack: a real server (not -dev) with persistent storage, so keys
# and certificates survive restarts. It starts sealed; the vault-init job initialises and unseals it (demo).
#
# Storage: OpenBao 2.x has no "file" backend any more ("unknown storage type file"); integrated storage (raft)
# on one node is its persistent single-server storage. The path is the image's /openbao/file directory, which
# the image's entrypoint owns for the openbao user. OpenBao does not use mlock, so no IPC_LOCK is needed.
#
# Production: TLS on the listener (tls_cert_file/tls_key_file), 3 or 5 raft nodes, auto-unseal (seal
# "transit", "pkcs11" or a cloud KMS) instead of a stored unseal key, an audit device, and the root token
# revoked after setup.
ui        = true
log_level = "info"

storage "raft" {
  path    = "/openbao/file"
  node_id = "openbao-1"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  # Demo only: plain HTTP on the compose network (the host port is bound to 127.0.0.1).
  tls_disable = true
}

api_addr     = "http://openbao:8200"
cluster_addr = "http://openbao:8201"
