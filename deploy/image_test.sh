#!/usr/bin/env bash
# Build the serving image for real with podman (no Docker engine here) and run it the way a
# restricted Kubernetes pod would: read-only root, tmpfs /tmp only, non-root numeric user, no
# capabilities, no-new-privileges, and a network namespace with loopback only (--network=none).
# Probes run inside the container (podman exec), so nothing outside it is reachable either way.
# Then SIGTERM (podman stop) must end it with exit code 0.
#
# Base image: a Debian bookworm rootfs made with debootstrap (python3 + venv from Debian), imported
# as a local image, so Docker Hub is never needed. Cached in $WORK; delete it to start over.
#
#   deploy/image_test.sh            # or: make image-test
#   deploy/image_test.sh --build-only   # make image
#   IMAGE=... BUNDLES=... WORK=... deploy/image_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/nlp-inference:test}
BASE=${BASE:-localhost/debian-python:bookworm}
BUNDLES=${BUNDLES:-.cache/bundles}
WORK=${WORK:-.cache/deploy}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NAME=nlp-inference-image-test
export CONTAINERS_CONF="$PWD/deploy/containers.conf"

START=$SECONDS
step() { printf '\n== [%4ss] %s\n' "$((SECONDS - START))" "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# Run python inside the running container (the image has python, no curl).
in_container() { podman exec "$NAME" python3 -c "$1"; }

step "tools"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v runc >/dev/null; then
  [ "$(id -u)" = 0 ] || die "podman, runc and debootstrap are missing (apt-get install as root)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc debootstrap >/dev/null
fi
podman --version
runc --version | head -n 1

[ -f "$BUNDLES/ner-food/bundle.json" ] \
  || die "$BUNDLES/ner-food is missing: build it with 'make default-models' first"

step "base image $BASE (debootstrap --variant=minbase bookworm + python3, python3-venv)"
if ! podman image exists "$BASE"; then
  if [ ! -f "$WORK/rootfs.tar" ]; then
    rm -rf "$WORK/rootfs"
    mkdir -p "$WORK"
    nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -n 20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar --numeric-owner -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
    rm -rf "$WORK/rootfs"
  fi
  podman import --change 'CMD ["python3"]' "$WORK/rootfs.tar" "$BASE" >/dev/null
fi
podman run --rm --network=none "$BASE" python3 --version

step "build $IMAGE (bundles baked in from $BUNDLES)"
# Stage the bundles inside the build context, world-readable: the image runs as uid 10001 and
# COPY keeps modes (an export written with umask 077 would be unreadable there).
stage=.cache/deploy/bundles  # inside the build context (.dockerignore lets it in)
rm -rf "$stage"
mkdir -p "$stage"
cp -R "$BUNDLES"/. "$stage"/
chmod -R u=rwX,go=rX "$stage"
du -sh "$stage"
# pip inside the build uses this machine's index when it is an http(s) one (file:// indexes on
# this host are invisible in the build container); unset means PyPI.
pip_args=()
index=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}
case $index in http*) pip_args+=(--build-arg "PIP_INDEX_URL=$index") ;; esac
extra=${PIP_EXTRA_INDEX_URL:-$(pip config get global.extra-index-url 2>/dev/null || true)}
extra=$(printf '%s\n' $extra | grep -E '^https?://' | paste -sd ' ' || true)
[ -n "$extra" ] && pip_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra")
# This host reaches PyPI through a TLS-intercepting proxy whose CA is only in the host's store:
# hand that store to pip as a build secret (not kept in any layer).
ca=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
ca=${ca:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$ca" ] && pip_args+=(--secret "id=pip_ca,src=$ca")
# --format docker keeps HEALTHCHECK (OCI image config has no field for it).
nice -n 10 podman build --format docker --network=host \
  --build-arg "BASE_IMAGE=$BASE" --build-arg "BUNDLES=$stage" "${pip_args[@]}" \
  -t "$IMAGE" .
podman image inspect --format \
  'user={{.Config.User}} size={{.Size}} healthcheck={{.Config.Healthcheck.Test}}' "$IMAGE"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] \
  || die "image user is not 10001:10001"

[ "${1:-}" = --build-only ] && { step "built $IMAGE"; exit 0; }

step "runtime stage: no torch, no transformers, no compiler"
podman run --rm --network=none "$IMAGE" python3 -c "
import importlib.util, shutil, sys
bad = [m for m in ('torch', 'transformers', 'optimum') if importlib.util.find_spec(m)]
cc = [c for c in ('gcc', 'cc', 'g++', 'clang') if shutil.which(c)]
import onnxruntime, tokenizers
print('onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())
print('tokenizers', tokenizers.__version__, '| export packages:', bad, '| compilers:', cc)
sys.exit(1 if bad or cc else 0)"

step "run: --read-only --tmpfs /tmp --cap-drop=ALL --user 10001 no-new-privileges --network=none"
podman rm --force --ignore "$NAME" >/dev/null
podman run --detach --name "$NAME" \
  --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m,mode=1777 \
  --cap-drop=ALL --user 10001:10001 --security-opt=no-new-privileges \
  --network=none \
  "$IMAGE"
trap 'podman rm --force --ignore "$NAME" >/dev/null 2>&1 || true' EXIT

step "wait for /readyz (bundle load + warm-up)"
ready=""
for _ in $(seq 1 180); do
  state=$(podman inspect --format '{{.State.Status}}' "$NAME")
  [ "$state" = running ] || { podman logs "$NAME"; die "container is $state"; }
  if ready=$(in_container "
import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).read().decode())" \
      2>/dev/null); then
    break
  fi
  ready=""
  sleep 1
done
[ -n "$ready" ] || { podman logs "$NAME"; die "not ready after 180 s"; }
echo "GET /readyz -> 200 $ready"

step "POST /v1/entities inside the container"
in_container "
import json, urllib.request
texts = ['tushar se 2 misal mangwao', 'inayat cafe se pizza chahiye, extra spicy']
req = urllib.request.Request('http://127.0.0.1:8000/v1/entities',
    data=json.dumps({'texts': texts}).encode(), headers={'content-type': 'application/json'})
with urllib.request.urlopen(req, timeout=30) as resp:
    status, body = resp.status, json.load(resp)
print('status', status)
print(json.dumps(body))
assert status == 200 and len(body['results']) == len(texts)
for text, result in zip(texts, body['results']):
    assert result['entities'], f'no entities in {text!r}'
    for e in result['entities']:
        assert text[e['start']:e['end']] == e['text'], e
"

if [ -f "$BUNDLES/postures-legal/bundle.json" ]; then
  step "POST /v1/postures, a ~10,000-token document; peak memory of the server"
  in_container "
import json, time, urllib.request
doc = 'The appellant moved to dismiss the complaint and the court granted the motion. ' * 700
req = urllib.request.Request('http://127.0.0.1:8000/v1/postures',
    data=json.dumps({'text': doc, 'top_k': 3}).encode(), headers={'content-type': 'application/json'})
t0 = time.perf_counter()
with urllib.request.urlopen(req, timeout=120) as resp:
    status, body = resp.status, json.load(resp)
result = body['results'][0]
print('status', status, '| chars', len(doc), '| windows', result['windows'],
      '| postures', [p['label'] for p in result['postures']], '| %.2f s' % (time.perf_counter() - t0))
assert status == 200 and result['windows'] >= 1
"
fi
in_container "
status = dict(line.split(':\t', 1) for line in open('/proc/1/status').read().splitlines())
print('server RSS now', status['VmRSS'].strip(), '| peak (VmHWM)', status['VmHWM'].strip())
"

step "confinement as seen from inside"
in_container "
import os
status = dict(line.split(':\t', 1) for line in open('/proc/1/status').read().splitlines())
ifaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]
print('uid', os.getuid(), 'gid', os.getgid(), '| CapEff', status['CapEff'].strip(),
      '| NoNewPrivs', status['NoNewPrivs'].strip(), '| interfaces', ifaces)
assert os.getuid() == 10001 and int(status['CapEff'], 16) == 0
assert status['NoNewPrivs'].strip() == '1' and ifaces == ['lo']
for path in ('/opt/venv/probe', '/models/probe', '/probe'):
    try:
        open(path, 'w')
    except OSError as exc:
        print('write', path, '->', type(exc).__name__, exc.strerror)
    else:
        raise SystemExit(f'{path} is writable')
open('/tmp/probe', 'w').write('ok')
print('write /tmp/probe -> ok')
"
# podman times healthchecks with systemd timers (none here: it logs an error per run and stop,
# harmless); run the HEALTHCHECK once by hand instead.
podman healthcheck run "$NAME" && echo "HEALTHCHECK: healthy"

step "podman stop (SIGTERM) -> exit code 0"
t0=$SECONDS
podman stop --time 30 "$NAME" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
echo "stopped in $((SECONDS - t0)) s, exit code $code; last log lines:"
podman logs "$NAME" 2>&1 | tail -n 6
[ "$code" = 0 ] || die "exit code $code after SIGTERM"

step "image test passed"
