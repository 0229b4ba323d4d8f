# Sourced by the bench scripts: a throwaway signer directory with a SoftHSM2 token holding one K1
# and one P-256 key (both generated on the token by `oryx-signer keys generate`).
#
#   softhsm_signer BIN DIR LISTEN   sets cfg (the config path), k1 and r1 (their public keys),
#                                   and exports SOFTHSM2_CONF
softhsm_signer() {
  local bin=$1 dir=$2 listen=$3
  local chain=0261640fa4c4b1243f429b3bc69f18050bfc8b87645a218cc3b337ee34d8fa81   # private: benches raise watermarks
  # A fixed metrics port, so `bench` can read the signer's per-stage times from it.
  local mport
  mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin/oryx-signer" init "$dir/signer" --chain $chain --listen "$listen" --metrics "127.0.0.1:$mport" >/dev/null
  mkdir -p "$dir/tokens"
  export SOFTHSM2_CONF=$dir/softhsm2.conf
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" > "$SOFTHSM2_CONF"
  softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
  local module
  module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
  printf '1234\n' > "$dir/signer/secrets/pin"; chmod 600 "$dir/signer/secrets/pin"
  cfg=$dir/signer/oryx-signer.toml
  printf '\n[backends.hsm]\ntype = "pkcs11"\nmodule = "%s"\ntoken_label = "bench"\npin_file = "secrets/pin"\nsessions = 4\n' "$module" >> "$cfg"
  k1=$("$bin/oryx-signer" keys generate -c "$cfg" --backend hsm --label k1 --json | sed 's/.*"public_key":"\([^"]*\)".*/\1/')
  r1=$("$bin/oryx-signer" keys generate -c "$cfg" --backend hsm --label r1 --r1 --json | sed 's/.*"public_key":"\([^"]*\)".*/\1/')
  SIGNER_CHAIN=$chain
}
