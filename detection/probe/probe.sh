#!/bin/sh
# guestcompat guest probe: print what this machine looks like, as ONE framed
# JSON document on stdout (the serial console), then exit.
#
# Written for busybox sh in a TCG guest, where every fork+exec costs ~14 ms:
# files are read with the `read` builtin, symlinks resolved with `cd -P`,
# paths matched with globs and `case`; the shell only writes a record stream
# (see probe.awk) and a fixed handful of processes does the rest:
#   gcprobe (x86 payloads only), wc, od, dmesg, awk, sha256sum, base64, sed;
# plus, where the image has them, the guest's own tools (about 1.7 s under
# TCG on x86_64, virt-what alone ~0.8 s: see detection/README.md).
# The document layout is described in detection/README.md; the frame in
# docs/design.md.
#
# Every root path can be redirected so the host's tests can run this script
# against the host's own /sys or against a fake tree:
#   GC_SYSROOT        prefix for /sys and /proc (default "")
#   GC_TMPDIR         scratch directory (default /tmp)
#   GC_HELPER         native helper (default: gcprobe next to this script)
#   GC_AWKPROG        awk program (default: probe.awk next to this script)
#   GC_DMESG          command printing the kernel log (default "dmesg")
#   GC_CONSOLE_LEVEL  console log level set first; "" leaves it alone (default 1)
#   GC_TOOLROOT       prefix of the guest's own tools (/usr/bin/lspci, ...; default "")
#   GC_EXTRA          a file of further records (a full guest's system state)
#   GC_T_INIT         /proc/uptime when /init started (images/init.py), for timing/
#
# Timing (bench/boot.py --breakdown): the document's top-level "timing"
# object holds the guest's /proc/uptime at each step boundary
# (timing/uptime/<step>); the line "gc-probe: uptime U od U1 awk U2" just
# before the frame gives the host the guest clock at a console line it
# timestamps (and when wc+od and awk were done). Neither is
# part of the Fingerprint. With guestcompat.klog=full on the kernel command
# line (bench measurement boots only) timing/kernel_log carries the whole
# kernel log, e.g. initcall_debug's lines.

export LC_ALL=C
START=$PWD
R=${GC_SYSROOT-}
T=${GC_TMPDIR:-/tmp}
case $0 in */*) HERE=${0%/*} ;; *) HERE=. ;; esac
AWKPROG=${GC_AWKPROG:-$HERE/probe.awk}
HELPER=${GC_HELPER-$HERE/gcprobe}
DMESG=${GC_DMESG:-dmesg}
LEVEL=${GC_CONSOLE_LEVEL-1}

# Kernel messages would interleave with the document on the console: keep
# only emergencies from now on (a write to printk is `dmesg -n` without a fork).
if [ -n "$LEVEL" ]; then
	{ echo "$LEVEL" > "$R/proc/sys/kernel/printk"; } 2>/dev/null || dmesg -n "$LEVEL" 2>/dev/null
fi

[ -d "$T" ] || mkdir -p "$T"
exec 3>"$T/gc-rec"
exec 5>"$T/gc-times"

# stamp STEP: the guest's uptime now, as a timing record (no fork: `read`).
stamp() {
	_u=
	read -r _u _ < "$R/proc/uptime" 2>/dev/null
	[ -n "$_u" ] && printf 's\ttiming/uptime/%s\t%s\n' "$1" "$_u" >&5
}
[ -n "${GC_T_INIT-}" ] && printf 's\ttiming/uptime/init\t%s\n' "$GC_T_INIT" >&5
stamp start


# rec OP PATH VALUE: one record (format in probe.awk).
rec() {
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" >&3
}


# --- settle: wait (up to GC_SETTLE_TIMEOUT s) for the disks and NICs the -----
# harness announced on the kernel command line (guestcompat.disks=N,
# guestcompat.nics=N): some drivers (mptsas) discover disks asynchronously,
# after insmod returned. Costs nothing when everything is already there.
want_disks=0
want_nics=0
want_rates=
want_klog=
want_guestinfo=
want_rpcflood=
if [ -r "$R/proc/cmdline" ]; then
	read -r cmdline < "$R/proc/cmdline"
	for w in $cmdline; do
		case $w in
		guestcompat.disks=*) want_disks=${w#*=} ;;
		guestcompat.nics=*) want_nics=${w#*=} ;;
		guestcompat.rate=*) want_rates=${w#*=} ;;
		guestcompat.run=*) boot_run=${w#*=} ;;
		guestcompat.klog=*) want_klog=${w#*=} ;;
		guestcompat.guestinfo=*) want_guestinfo=${w#*=} ;;
		guestcompat.rpcflood=*) want_rpcflood=${w#*=} ;;
		esac
	done
fi
# Which run this is: the host's per-boot nonce (guestcompat.run= on the kernel
# command line, harness/run.py), or the token /init passes on a second run
# (migration checks, images/init.py), which wins. The host refuses a document
# whose run is not its own: one left on the console by an earlier boot or
# replayed from elsewhere is not this guest's answer.
run=${GC_RUN:-${boot_run-}}
[ -n "$run" ] && rec s run "$run"
count_present() {
	have_disks=0
	for d in "$R"/sys/block/sd* "$R"/sys/block/vd* "$R"/sys/block/nvme*; do
		[ -e "$d" ] && have_disks=$((have_disks + 1))
	done
	have_nics=0
	for d in "$R"/sys/class/net/*; do
		[ -e "$d/device" ] && have_nics=$((have_nics + 1))
	done
}
count_present
tries=$(( ${GC_SETTLE_TIMEOUT:-20} * 10 ))
waited=0
while [ "$have_disks" -lt "$want_disks" ] || [ "$have_nics" -lt "$want_nics" ]; do
	if [ "$waited" -ge "$tries" ]; then
		rec e "" "settle: waited ${GC_SETTLE_TIMEOUT:-20} s for $want_disks disk(s) and $want_nics NIC(s), found $have_disks and $have_nics"
		break
	fi
	sleep 0.1
	waited=$((waited + 1))
	count_present
done
rec s settle/waited_ds "$waited"
stamp settle

# rdf PATH FILE: the text of FILE as a string record; further lines become
# continuation records, the final newline is dropped.
rdf() {
	_op=s
	while IFS= read -r _l || [ -n "$_l" ]; do
		printf '%s\t%s\t%s\n' "$_op" "$1" "$_l" >&3
		_op=+
		_l=
	done < "$2"
	[ "$_op" = s ] && printf 's\t%s\t\n' "$1" >&3
}

# pcifn DIR: set PCIFN to the innermost PCI function (DDDD:BB:DD.F) on the
# physical path DIR, "" if there is none.
pcifn() {
	_p=$1
	PCIFN=
	while [ -n "$_p" ]; do
		case ${_p##*/} in
		*[0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7])
			PCIFN=${_p##*/}
			return 0 ;;
		esac
		_p=${_p%/*}
	done
	return 1
}

# physdir LINK: PHYS = physical path of LINK (a directory), "" if unresolvable.
physdir() {
	PHYS=
	[ -e "$1" ] || return 1
	cd -P "$1" 2>/dev/null || return 1
	PHYS=$PWD
	cd "$START" 2>/dev/null
	return 0
}

# Binary files (PCI config spaces, SMBIOS) are collected in "$@" and
# dumped by one od at the end.
set --

# --- kernel ----------------------------------------------------------------
v=
if [ -r "$R/proc/sys/kernel/arch" ]; then
	read -r v < "$R/proc/sys/kernel/arch"
else
	uname -m > "$T/gc-uname" && read -r v < "$T/gc-uname"
fi
rec s arch "$v"
v=
if [ -r "$R/proc/sys/kernel/osrelease" ]; then
	read -r v < "$R/proc/sys/kernel/osrelease"
else
	uname -r > "$T/gc-uname" && read -r v < "$T/gc-uname"
fi
rec s kernel "$v"

# --- DMI as the kernel exports it --------------------------------------------
for f in "$R"/sys/class/dmi/id/*; do
	n=${f##*/}
	case $n in uevent|modalias|power|subsystem) continue ;; esac
	[ -f "$f" ] && [ -r "$f" ] || continue
	rdf "dmi/$n" "$f"
done

# --- raw SMBIOS -----------------------------------------------------------
f=$R/sys/firmware/dmi/tables/smbios_entry_point
if [ -f "$f" ] && [ -r "$f" ]; then set -- "$@" "$f"; rec b smbios/entry_point "$f"; fi
f=$R/sys/firmware/dmi/tables/DMI
if [ -f "$f" ] && [ -r "$f" ]; then set -- "$@" "$f"; rec b smbios/table "$f"; fi

# --- PCI functions --------------------------------------------------------
# The id attributes are one line each (the kernel prints "%#06x\n"): one
# `read` per file instead of rdf's loop (sysfs walk ~0.4 s under TCG for a
# 45-function VMware machine).  A file with more lines still goes through rdf.
for d in "$R"/sys/bus/pci/devices/*; do
	[ -d "$d" ] || continue
	a=${d##*/}
	for n in vendor device subsystem_vendor subsystem_device class revision; do
		[ -r "$d/$n" ] || continue
		_l=
		{ IFS= read -r _l && ! IFS= read -r _x; } < "$d/$n" &&
			printf 's\tpci/%s/%s\t%s\n' "$a" "$n" "$_l" >&3 ||
			rdf "pci/$a/$n" "$d/$n"
	done
	drv=
	physdir "$d/driver" && drv=${PHYS##*/}
	rec s "pci/$a/driver" "$drv"
	if [ -r "$d/config" ]; then
		set -- "$@" "$d/config"
		rec b "pci/$a/config" "$d/config"
	fi
done

# --- PCI slots (name -> DDDD:BB:DD) -----------------------------------------
for f in "$R"/sys/bus/pci/slots/*/address; do
	[ -r "$f" ] || continue
	n=${f%/address}
	rdf "pci_slots/${n##*/}" "$f"
done

# --- network interfaces -----------------------------------------------------
for d in "$R"/sys/class/net/*; do
	[ -d "$d" ] || continue
	n=${d##*/}
	[ -r "$d/address" ] && rdf "net/$n/mac" "$d/address"
	[ -r "$d/ifindex" ] && rdf "net/$n/ifindex" "$d/ifindex"
	PCIFN=
	physdir "$d/device" && pcifn "$PHYS"
	rec s "net/$n/pci" "$PCIFN"
done

# --- block devices --------------------------------------------------------
# ata_index DIR NAME: how many of DIR's ataN links have a lower number than NAME (ataN): the
# port of an AHCI controller, the channel of a PIIX IDE one.
ata_index() {
	_n=${2#ata}
	_i=0
	for _x in "$1"/ata*; do
		_m=${_x##*/ata}
		case $_m in ''|*[!0-9]*) continue ;; esac
		[ "$_m" -lt "$_n" ] && _i=$((_i + 1))
	done
	ATAIDX=$_i
}

for d in "$R"/sys/block/*; do
	[ -d "$d" ] || continue
	n=${d##*/}
	# SCSI INQUIRY strings and type (0 disk, 5 CD-ROM); an NVMe controller's model, serial, firmware
	for f in vendor model rev type serial firmware_rev; do
		[ -f "$d/device/$f" ] && [ -r "$d/device/$f" ] && rdf "block/$n/$f" "$d/device/$f"
	done
	[ -r "$d/nsid" ] && rdf "block/$n/nsid" "$d/nsid"
	PCIFN=
	physdir "$d" && pcifn "$PHYS"
	rec s "block/$n/pci" "$PCIFN"
	# Where it hangs on its controller (the profile's unit): the SCSI address H:C:T:L, the SAS
	# phy of its port (mptsas), the index of its ATA link on the controller.
	_p=$PHYS
	while [ -n "$_p" ]; do
		_c=${_p##*/}
		case $_c in
		[0-9]*:[0-9]*:[0-9]*:[0-9]*) rec s "block/$n/hctl" "$_c" ;;
		port-[0-9]*:[0-9]*)
			for _x in "$_p"/phy-*:*; do
				[ -e "$_x" ] && rec s "block/$n/sas_phy" "${_x##*:}"
				break
			done ;;
		ata[0-9]*)
			ata_index "${_p%/*}" "$_c"
			rec s "block/$n/ata_link" "$ATAIDX" ;;
		esac
		_p=${_p%/*}
	done
	# PAPR VIO (pseries): .../devices/vio/<unit address>/host0/...
	case $PHYS in
	*/devices/vio/*)
		v=${PHYS#*/devices/vio/}
		rec s "block/$n/vio" "${v%%/*}" ;;
	esac
done

stamp sysfs

# --- disk rates: time direct I/O on throttled disks (guestcompat.rate=SPEC,...) --
# SPEC = DDDD:BB:DD.F/target/metric/block_size/count; metric bps_*/iops_* with
# read, write or total (total is measured with reads). Only where a profile
# sets QoS limits, so other boots pay nothing.
# A SPEC of several disks joined by + (a VM-wide limit, issue 26) reads them
# all at once: each part gets the group's first index as rate/<i>/group and
# the group's start and end. (Each index's records are written together:
# probe.awk nests consecutive records.)
i=0
rates=$want_rates
while [ -n "$rates" ]; do
	group=${rates%%,*}
	case $rates in *,*) rates=${rates#*,} ;; *) rates= ;; esac
	first=$i
	parts=
	while [ -n "$group" ]; do
		spec=${group%%+*}
		case $group in *+*) group=${group#*+} ;; *) group= ;; esac
		r_pci=${spec%%/*}; r=${spec#*/}
		r_target=${r%%/*}
		r_dev=
		for d in "$R"/sys/block/sd*; do
			[ -e "$d/device" ] || continue
			physdir "$d/device" || continue
			case ${PHYS##*/} in *:*:"$r_target":*) ;; *) continue ;; esac
			case $PHYS in */"$r_pci"/*) r_dev=${d##*/} ;; esac
		done
		parts="$parts $i=$spec=$r_dev"
		i=$((i + 1))
	done
	read -r t0 _ < "$R/proc/uptime"
	pids=
	for p in $parts; do
		j_dev=${p##*=}
		[ -n "$j_dev" ] || continue
		r=${p#*=}; r=${r%=*}; r=${r#*/}; r=${r#*/}
		j_metric=${r%%/*}; r=${r#*/}
		j_bs=${r%%/*}; j_count=${r#*/}
		case $j_metric in
		*_write) dd if=/dev/zero of="/dev/$j_dev" bs="$j_bs" count="$j_count" oflag=direct 2>/dev/null & ;;
		*) dd if="/dev/$j_dev" of=/dev/null bs="$j_bs" count="$j_count" iflag=direct 2>/dev/null & ;;
		esac
		pids="$pids ${p%%=*}:$!"
	done
	for p in $pids; do
		wait "${p#*:}"
		eval "st_${p%%:*}=$?"
	done
	read -r t1 _ < "$R/proc/uptime"
	for p in $parts; do
		j_i=${p%%=*}; r=${p#*=}
		rec s "rate/$j_i/spec" "${r%=*}"
		rec s "rate/$j_i/device" "${p##*=}"
		[ "$i" -gt $((first + 1)) ] && rec s "rate/$j_i/group" "$first"
		if [ -n "${p##*=}" ]; then
			eval "st=\$st_$j_i"
			rec s "rate/$j_i/status" "$st"
			rec s "rate/$j_i/start" "$t0"
			rec s "rate/$j_i/end" "$t1"
		fi
	done
done

# --- device tree (ppc64 pseries and other OF machines; absent on x86) ------
dt=$R/proc/device-tree
if [ -d "$dt" ]; then
	for n in model compatible host-model host-serial system-id vm,uuid; do
		f=$dt/$n
		if [ -f "$f" ] && [ -r "$f" ]; then set -- "$@" "$f"; rec b "devicetree/root/$n" "$f"; fi
	done
	for d in "$dt"/vdevice/*; do
		[ -d "$d" ] || continue
		for n in name compatible device_type reg; do
			f=$d/$n
			if [ -f "$f" ] && [ -r "$f" ]; then set -- "$@" "$f"; rec b "devicetree/vdevice/${d##*/}/$n" "$f"; fi
		done
	done
fi

stamp rates_devicetree

# --- native helper: CPUID leaves, VMware backdoor ---------------------------
if [ -n "$HELPER" ] && [ -x "$HELPER" ]; then
	"$HELPER" > "$T/gc-helper" 2>/dev/null
	st=$?
	rec i "" "$T/gc-helper"
	[ "$st" = 0 ] || rec e "" "helper $HELPER exited with status $st"
fi

stamp helper

# --- guestinfo: the keys the run set (guestcompat.guestinfo=K1,K2 on the ----
# kernel command line), read back over the backdoor RPC channel the way
# vmware-rpctool reads them ("info-get guestinfo.K"); exit status 0 = the
# host answered "1 VALUE", 1 = "0 REASON", 3 = no RPC channel.
if [ -n "$want_guestinfo" ] && [ -n "$HELPER" ] && [ -x "$HELPER" ]; then
	# (no set --: "$@" holds the binary files for od)
	_ifs=$IFS
	IFS=,
	for k in $want_guestinfo; do
		IFS=$_ifs
		case $k in *[!A-Za-z0-9._-]*|"") continue ;; esac
		"$HELPER" --rpc "info-get guestinfo.$k" > "$T/gc-gi$k.out" 2> "$T/gc-gi$k.err" < /dev/null
		rec s "guestinfo/$k/status" "$?"
		rec t "guestinfo/$k/value" "$T/gc-gi$k.out"
		rec t "guestinfo/$k/error" "$T/gc-gi$k.err"
	done
	IFS=$_ifs
	# ... and one write: the run's nonce into guestinfo.guestcompat.run, which
	# the host reads back over QMP (qom-get vmport x-guestinfo).
	"$HELPER" --rpc "info-set guestinfo.guestcompat.run ${run:-none}" > /dev/null 2> "$T/gc-gis.err" < /dev/null
	rec s "guestinfo_set/status" "$?"
	rec t "guestinfo_set/error" "$T/gc-gis.err"
fi

stamp guestinfo

# --- running a tool: each runs once; its stdout, stderr, exit status and ----
# duration (centiseconds of /proc/uptime) go into tools/<key>/.
TR=${GC_TOOLROOT-}
NT=0
up_cs() {
	_u=
	read -r _u _ < "$R/proc/uptime" 2>/dev/null
	case $_u in *.*) UPCS=${_u%.*}${_u#*.} ;; *) UPCS=0 ;; esac
	UPCS=${UPCS#0}
	UPCS=${UPCS:-0}
}
# tool KEY PROG ARGS...
tool() {
	_k=$1
	shift
	up_cs
	_t0=$UPCS
	"$@" > "$T/gc-t$NT.out" 2> "$T/gc-t$NT.err" < /dev/null
	_st=$?
	up_cs
	rec s "tools/$_k/status" "$_st"
	rec s "tools/$_k/centiseconds" "$((UPCS - _t0))"
	rec t "tools/$_k/stdout" "$T/gc-t$NT.out"
	rec t "tools/$_k/stderr" "$T/gc-t$NT.err"
	NT=$((NT + 1))
}

# --- input devices (issue 26: the VMware mouse) ------------------------------
# The name of each input device (/sys/class/input/input*/name, what
# /proc/bus/input/devices lists as N: Name=; input/<n>, at most 64; reading
# /proc/bus/input/devices itself with the read builtin hung the guest).
# psmouse probes the i8042 AUX port (and the VMMouse
# behind the VMware backdoor) asynchronously after insmod: where it is loaded,
# wait (up to 3 s) until every serio port has a driver.
if [ -d "$R/sys/module/psmouse" ]; then
	_w=0
	while [ "$_w" -lt 30 ]; do
		_unbound=0
		for d in "$R"/sys/bus/serio/devices/*; do
			[ -e "$d" ] && [ ! -e "$d/driver" ] && _unbound=1
		done
		[ "$_unbound" = 0 ] && break
		sleep 0.1
		_w=$((_w + 1))
	done
	rec s input_waited_ds "$_w"
fi
_n=0
for d in "$R"/sys/class/input/input*; do
	[ -r "$d/name" ] || continue
	[ "$_n" -lt 64 ] || break
	_l=
	read -r _l < "$d/name"
	case $_l in *"	"*) _l="<name with a tab>" ;; esac
	rec s "input/$_n" "$_l"
	_n=$((_n + 1))
done
stamp input
# A hostile guest (bound tests only, guestcompat.rpcflood=SECONDS): open RPC
# channels and send without end; the host measures its own memory around it.
# With guestinfo keys announced (a run that uses the RPC channel): the backdoor's
# time and speed commands, as vmware-toolbox-cmd stat hosttime/speed call them.
# And open-vm-tools' own clients where the image has them (I/O permission
# granted by the helper: TCG refuses the port to user code without it).
if [ -n "$want_guestinfo" ] && [ -n "$HELPER" ] && [ -x "$HELPER" ]; then
	tool backdoor-time "$HELPER" --backdoor-time
	if [ -x "$TR/usr/bin/vmware-rpctool" ]; then
		tool vmware-rpctool-get "$HELPER" --ioperm-exec "$TR/usr/bin/vmware-rpctool" "info-get guestinfo.${want_guestinfo%%,*}"
		tool vmware-rpctool-set "$HELPER" --ioperm-exec "$TR/usr/bin/vmware-rpctool" "info-set guestinfo.guestcompat.rpctool ok"
	fi
	if [ -x "$TR/usr/bin/vmware-toolbox-cmd" ]; then
		tool vmware-toolbox-hosttime "$HELPER" --ioperm-exec "$TR/usr/bin/vmware-toolbox-cmd" stat hosttime
		tool vmware-toolbox-speed "$HELPER" --ioperm-exec "$TR/usr/bin/vmware-toolbox-cmd" stat speed
	fi
	# vmtoolsd exits at once when it finds no channel; with one it polls TCLO and
	# answers the host's reset and Capabilities_Register (tools.set.version).
	# (stdout: "running" after 8 s, or "exited N"; a tool's records stay grouped)
	if [ -x "$TR/usr/bin/vmtoolsd" ]; then
		tool vmtoolsd sh -c '"$1" --ioperm-exec "$2" >/dev/null 2>&1 </dev/null &
			p=$!; sleep 8
			if kill -0 $p 2>/dev/null; then echo running; kill $p; else wait $p; echo "exited $?"; fi' \
			sh "$HELPER" "$TR/usr/bin/vmtoolsd"
	fi
fi
case $want_rpcflood in
[1-9]|[1-5][0-9]|60)
	[ -n "$HELPER" ] && [ -x "$HELPER" ] &&
		tool rpcflood "$HELPER" --rpc-flood "$want_rpcflood" ;;
esac

# --- the guest's own tools (only those the image has) ------------------------
# What a migration engineer would run inside the VM.  Outputs are parsed on
# the host (detection/tools.py).
{
	[ -x "$TR/usr/bin/lspci" ] && tool lspci "$TR/usr/bin/lspci" -i "$TR/usr/share/misc/pci.ids" -nnmmv
	[ -x "$TR/usr/sbin/dmidecode" ] && tool dmidecode "$TR/usr/sbin/dmidecode"
	[ -x "$TR/usr/bin/systemd-detect-virt" ] && tool systemd-detect-virt "$TR/usr/bin/systemd-detect-virt"
	[ -x "$TR/usr/sbin/virt-what" ] && tool virt-what "$TR/usr/sbin/virt-what"
	if [ -x "$TR/usr/bin/vmware-checkvm" ]; then
		# Unprivileged first (what VMware allows and TCG refuses), then with
		# I/O permission on the backdoor ports granted by the x86 helper.
		tool vmware-checkvm "$TR/usr/bin/vmware-checkvm"
		[ -n "$HELPER" ] && [ -x "$HELPER" ] &&
			tool vmware-checkvm-ioperm "$HELPER" --ioperm-exec "$TR/usr/bin/vmware-checkvm"
	fi
	if [ -x "$TR/usr/bin/udevadm" ]; then
		for d in "$R"/sys/class/net/*; do
			[ -d "$d" ] || continue
			[ "${d##*/}" = lo ] && continue
			tool "net_id/${d##*/}" "$TR/usr/bin/udevadm" test-builtin net_id "$d"
		done
	fi
} 2>/dev/null
stamp tools

# --- what a full guest's wrapper recorded (GC_EXTRA: a record file; see ----
# images/data/fullguest/fullguest.sh): system state, addresses. Absent in the
# initramfs probe images.
[ -n "${GC_EXTRA-}" ] && [ -r "$GC_EXTRA" ] && rec i "" "$GC_EXTRA"

# --- kernel log (filtered by probe.awk) ---------------------------------------
$DMESG > "$T/gc-klog" 2>/dev/null || rec e "" "$DMESG failed"
rec k kernel_log "$T/gc-klog"
stamp dmesg
[ "$want_klog" = full ] && printf 't\ttiming/kernel_log\t%s\n' "$T/gc-klog" >&5
exec 5>&-
rec i "" "$T/gc-times"
exec 3>&-

# --- one awk builds the JSON; frame it ----------------------------------------
if [ $# -gt 0 ]; then
	wc -c "$@" > "$T/gc-sizes" 2>/dev/null
	od -An -v -tx1 "$@" > "$T/gc-hex" 2>/dev/null
else
	: > "$T/gc-sizes"
	: > "$T/gc-hex"
fi
_od=
read -r _od _ < "$R/proc/uptime" 2>/dev/null
awk -v sizes="$T/gc-sizes" -v hexdump="$T/gc-hex" -v count="$T/gc-count" \
	-f "$AWKPROG" "$T/gc-rec" > "$T/gc-json"
_awk=
read -r _awk _ < "$R/proc/uptime" 2>/dev/null
read -r nbytes < "$T/gc-count"
sha256sum "$T/gc-json" > "$T/gc-sha"
read -r sha _ < "$T/gc-sha"
_u=
read -r _u _ < "$R/proc/uptime" 2>/dev/null
printf '\ngc-probe: uptime %s od %s awk %s\n' "${_u:-?}" "${_od:-?}" "${_awk:-?}"
printf '@@GUESTCOMPAT-BEGIN v1 sha256=%s bytes=%s\n' "$sha" "$nbytes"
base64 "$T/gc-json" | sed 's/^/@@/'
echo '@@GUESTCOMPAT-END'
