#!/bin/sh
# vm-kernel.sh puts Debian's current amd64 kernel and its modules where
# internal/vmtest looks for them, without installing the kernel into /boot:
#
#   /var/cache/keelson/vm/<version>/vmlinuz
#   /var/cache/keelson/vm/<version>/vmlinux    (the same kernel, uncompressed)
#   /var/cache/keelson/vm/<version>/modules/   (lib/modules/<version>, with modules.dep)
#   /var/cache/keelson/vm/current -> <version>
#
# It does nothing when that version is already there. KEELSON_VM_CACHE
# changes the directory. Run by `make deps`; needs root and apt.
set -eu

cache=${KEELSON_VM_CACHE:-/var/cache/keelson/vm}

# The metapackage names the versioned package of the current kernel.
image_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg=$(image_pkg)
if [ -z "$pkg" ]; then
	[ "$(id -u)" = 0 ] || { echo "vm-kernel.sh: apt knows no linux-image-amd64: run it as root (it runs apt-get update)" >&2; exit 1; }
	apt-get update -qq
	pkg=$(image_pkg)
fi
[ -n "$pkg" ] || { echo "vm-kernel.sh: apt knows no linux-image-amd64 on this machine" >&2; exit 1; }
version=${pkg#linux-image-}

if [ -e "$cache/$version/vmlinux" ] && [ -e "$cache/$version/modules/modules.dep" ]; then
	[ "$(readlink "$cache/current" 2>/dev/null || true)" = "$version" ] && exit 0
	[ "$(id -u)" = 0 ] || { echo "vm-kernel.sh: $cache/current should point at $version: run it as root" >&2; exit 1; }
	ln -sfn "$version" "$cache/current.new" && mv -T "$cache/current.new" "$cache/current"
	exit 0
fi

[ "$(id -u)" = 0 ] || { echo "vm-kernel.sh: the VM tests need kernel $version in $cache: run it as root" >&2; exit 1; }
PATH=$PATH:/sbin:/usr/sbin
# depmod writes the modules.dep the package lacks; xz unpacks the kernel.
if ! command -v depmod >/dev/null 2>&1 || ! command -v xz >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kmod xz-utils >/dev/null
fi

# unpack_kernel writes the ELF kernel inside bzImage $1 to $2, which qemu
# boots directly (PVH): under emulation the kernel's own decompressor takes
# seconds of every boot. It tries each xz, zstd and gzip stream in the image
# until one gives an ELF file.
unpack_kernel() {
	for kind in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
		tool=${kind%%:*}
		for off in $(LC_ALL=C grep -obUaP "${kind#*:}" "$1" | cut -d: -f1); do
			tail -c "+$((off + 1))" "$1" | "$tool" -dc 2>/dev/null >"$2" || true
			if [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ]; then
				return 0
			fi
		done
	done
	echo "vm-kernel.sh: found no ELF kernel inside $1" >&2
	return 1
}

mkdir -p "$cache"
work=$(mktemp -d "$cache/.work-XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get download runs as _apt, which must be able to write the directory.
chmod 755 "$work"
mkdir "$work/dl" "$work/root"
if id _apt >/dev/null 2>&1; then chown _apt "$work/dl"; fi
echo "vm-kernel.sh: fetching $pkg into $cache/$version"
(cd "$work/dl" && apt-get download -qq "$pkg")
dpkg-deb -x "$work"/dl/*.deb "$work/root"

mods=$work/root/lib/modules/$version
# Packages of merged-/usr releases ship /usr/lib/modules: give depmod both.
if [ ! -d "$mods" ] && [ -d "$work/root/usr/lib/modules/$version" ]; then
	mkdir -p "$work/root/lib/modules"
	mv "$work/root/usr/lib/modules/$version" "$mods"
	ln -s "../../../lib/modules/$version" "$work/root/usr/lib/modules/$version"
fi
# The VM loads modules with busybox's insmod, which may lack the
# decompressors: keep them plain.
find "$mods" -name '*.ko.xz' -exec xz -d {} +
find "$mods" -name '*.ko.zst' -exec zstd -q -d --rm {} +
find "$mods" -name '*.ko.gz' -exec gzip -d {} +
depmod -b "$work/root" "$version"

mkdir "$work/$version"
mv "$work/root/boot/vmlinuz-$version" "$work/$version/vmlinuz"
unpack_kernel "$work/$version/vmlinuz" "$work/$version/vmlinux"
mv "$mods" "$work/$version/modules"
rm -rf "${cache:?}/$version"
mv "$work/$version" "$cache/$version"
ln -sfn "$version" "$cache/current.new" && mv -T "$cache/current.new" "$cache/current"
# Each kernel takes some 400 MB: keep only the current one.
for old in "$cache"/*; do
	[ -L "$old" ] || [ "$(basename "$old")" = "$version" ] || rm -rf "$old"
done
echo "vm-kernel.sh: kernel $version ready in $cache/current"
