# probe.awk - turn the guestcompat record stream into the probe JSON document.
#
# Runs as ONE busybox awk process inside the guest (every extra process costs
# ~14 ms under TCG), so it does everything the shell cannot do cheaply:
# JSON escaping, nesting, hex of the binary files, filtering the kernel log.
# Written in plain POSIX awk (busybox awk, mawk and gawk with LC_ALL=C).
#
# Input: record files given as operands.  One record per line:
#     OP <TAB> PATH <TAB> VALUE
# PATH is "/"-separated object keys ("pci/0000:00:0f.0/vendor"); VALUE is the
# rest of the line (it may contain tabs).  OPs:
#     s   string value at PATH
#     +   continuation of the previous "s": append "\n" VALUE (multi-line values)
#     b   VALUE is a file name; its bytes (from the od dump) as lowercase hex at PATH,
#         null (plus an "errors" entry) when the dump has no bytes for it
#     k   VALUE is a file name (kernel log); array of its lines that match the
#         hypervisor/DMI pattern, at PATH
#     t   VALUE is a file name (a tool's output); its text as a string at PATH,
#         lines joined by "\n", the final newline dropped ("" if unreadable)
#     i   VALUE is a file name holding more records (the native helper's output)
#     e   VALUE is an error message for the top-level "errors" array
# Records must come grouped (all keys of one object consecutively); a key seen
# twice or an object reopened later is reported in "errors", never emitted twice.
#
# Variables (-v): sizes = output of `wc -c FILES`, hexdump = output of
# `od -An -v -tx1 FILES` (same FILES, same order), count = file that receives
# the byte length of the JSON written to stdout.

# Every regular expression is a /literal/: busybox awk compiles a regex given as a string on
# every match, which for the escaping test (every key and value) and the kernel-log filter (every
# dmesg line) cost ~0.3 s per boot under TCG.  What needs escaping: /[\001-\037\177"\\]/; the
# kernel-log filter (detection/README.md, `kernel_log`): in klog().
BEGIN {
	for (i = 1; i < 32; i++) {
		c = sprintf("%c", i)
		ESC[c] = sprintf("\\u%04x", i)
	}
	c = sprintf("%c", 127)
	ESC[c] = "\\u007f"
	ESC["\""] = "\\\""
	ESC["\\"] = "\\\\"
	nerr = 0
	nbytes = 0
	depth = 0
	load_blobs()
	emit("{\"format\":\"guestcompat-probe\",\"version\":1")
	first[0] = 0
	leafseen["format"] = 1
	leafseen["version"] = 1
	pending = 0
}

{ handle($0) }

END {
	flush()
	openpath("")
	if (nerr > 0) {
		key("errors")
		emit("[")
		for (i = 1; i <= nerr; i++) emit((i > 1 ? "," : "") jstr(errs[i]))
		emit("]")
	}
	emit("}")
	if (count != "") {
		print nbytes > count
		close(count)
	}
}

function emit(s) {
	printf "%s", s
	nbytes += length(s)
}

function err(msg) {
	errs[++nerr] = msg
}

# JSON string literal; control characters as \u00XX, bytes >= 0x80 untouched.
function jstr(s,    r, i, n, c) {
	if (s !~ /[\001-\037\177"\\]/) return "\"" s "\""
	r = ""
	n = length(s)
	for (i = 1; i <= n; i++) {
		c = substr(s, i, 1)
		if (c in ESC) r = r ESC[c]
		else r = r c
	}
	return "\"" r "\""
}

# Make the open-object stack equal to the components of DIR ("" = top level).
# Returns 0 when that would reopen an object closed earlier.
function openpath(dir,    parts, n, i, p, k2) {
	n = (dir == "") ? 0 : split(dir, parts, "/")
	for (i = 1; i <= n && i <= depth && (stk[i] "") == (parts[i] ""); i++) ;
	p = ""
	for (k2 = 1; k2 < i; k2++) p = p "/" parts[k2]
	for (k2 = i; k2 <= n; k2++) {
		p = p "/" parts[k2]
		if ((p in objseen) || (substr(p, 2) in leafseen)) return 0
	}
	while (depth >= i) {
		emit("}")
		depth--
	}
	p = ""
	for (k2 = 1; k2 < i; k2++) p = p "/" parts[k2]
	for (; i <= n; i++) {
		key(parts[i])
		emit("{")
		depth++
		stk[depth] = parts[i]
		first[depth] = 1
		p = p "/" parts[i]
		objseen[p] = 1
	}
	return 1
}

function key(k) {
	if (!first[depth]) emit(",")
	first[depth] = 0
	emit(jstr(k) ":")
}

# Emit "leaf": JSONVALUE at PATH; refuses duplicates and reopened objects.
# Consecutive leaves of one object (the common case) skip openpath.
function put(path, jvalue,    dir, leaf, j, k, rest) {
	if ((path in leafseen) || (("/" path) in objseen)) {
		err("duplicate key " path)
		return
	}
	# position of the last "/" (index, not a regex: a regex in a string is compiled on every call
	# by busybox awk, and inside a bracket a literal's "\/" is two characters there)
	j = 0
	rest = path
	while ((k = index(rest, "/")) > 0) {
		j += k
		rest = substr(rest, k + 1)
	}
	dir = (j > 0) ? substr(path, 1, j - 1) : ""
	leaf = substr(path, j + 1)
	if (leaf == "" || (!(curdir_ok && dir "" == curdir "") && !openpath(dir))) {
		err("records for " path " are not grouped with their object")
		return
	}
	curdir = dir
	curdir_ok = 1
	leafseen[path] = 1
	key(leaf)
	emit(jvalue)
}

function flush() {
	if (pending) put(ppath, jstr(pval))
	pending = 0
}

function handle(line,    op, rest, j, path, val) {
	j = index(line, "\t")
	if (j == 0) {
		if (line != "") err("malformed record: " line)
		return
	}
	op = substr(line, 1, j - 1)
	rest = substr(line, j + 1)
	j = index(rest, "\t")
	if (j == 0) {
		path = rest
		val = ""
	} else {
		path = substr(rest, 1, j - 1)
		val = substr(rest, j + 1)
	}
	if (op == "+") {
		if (pending) pval = pval "\n" val
		else err("continuation without a value: " path)
		return
	}
	flush()
	if (op == "s") {
		pending = 1
		ppath = path
		pval = val
	} else if (op == "b") {
		if (val in BLOB) put(path, "\"" BLOB[val] "\"")
		else {
			put(path, "null")
			err("no bytes read from " val)
		}
	} else if (op == "k") {
		put(path, klog(val))
	} else if (op == "t") {
		put(path, textfile(val))
	} else if (op == "i") {
		include(val)
	} else if (op == "e") {
		err(val)
	} else {
		err("unknown record type " op " for " path)
	}
}

function include(file,    line, rc) {
	while ((rc = (getline line < file)) > 0) handle(line)
	if (rc < 0) err("cannot read records from " file)
	close(file)
	flush()
}

# A whole text file as one JSON string.  Lines are escaped one by one (tabs,
# which dmidecode and lspci -vmm print on every line, by split(), not by the
# per-character loop) and joined pairwise, so a 50 kB output stays cheap in
# busybox awk under TCG.
function textfile(file,    line, n, m, i, rc, part) {
	n = 0
	while ((rc = (getline line < file)) > 0) part[++n] = jline(line)
	if (rc < 0) err("cannot read " file)
	close(file)
	while (n > 1) {
		m = 0
		for (i = 1; i <= n; i += 2) part[++m] = part[i] ((i < n) ? "\\n" part[i + 1] : "")
		for (i = m + 1; i <= n; i++) delete part[i]
		n = m
	}
	return "\"" ((n == 1) ? part[1] : "") "\""
}

# The inside of a JSON string literal for one line (no quotes).
function jline(s,    parts, n, i, r, q) {
	if (s !~ /[\001-\037\177"\\]/) return s
	n = split(s, parts, "\t")
	r = ""
	for (i = 1; i <= n; i++) {
		q = jstr(parts[i])
		r = r ((i > 1) ? "\\t" : "") substr(q, 2, length(q) - 2)
	}
	return r
}

function klog(file,    line, r, n, rc) {
	r = "["
	n = 0
	while ((rc = (getline line < file)) > 0) {
		if (tolower(line) ~ /hypervisor|vmware|kvm|xen|hyper-v|tcg|dmi:|tsc|hardware name:|bios-e820:|^(\[[ 0-9.]*\] )?efi: efi v/) r = r (n++ ? "," : "") jstr(line)
	}
	if (rc < 0) err("cannot read kernel log " file)
	close(file)
	return r "]"
}

# Read the wc/od dumps and cut the hex of every file into BLOB[name].
# Hex, not base64: base64 needs arithmetic on every byte, which cost 2 s of
# busybox awk under TCG; hex is one gsub per od line and one substr per file.
# Sizes and bytes must add up exactly; otherwise no blob is trusted.
function load_blobs(    line, nb, want, n, m, i, all, off, f, rc, bad) {
	if (sizes == "" || hexdump == "") return
	nb = 0
	want = 0
	while ((rc = (getline line < sizes)) > 0) {
		if (!match(line, /^ *[0-9]+ /)) continue
		nb++
		bsize[nb] = substr(line, 1, RLENGTH) + 0
		bname[nb] = substr(line, RLENGTH + 1)
		if (nb > 1 && bname[nb] == "total" && bsize[nb] == want) {
			nb--
			continue
		}
		want += bsize[nb]
	}
	close(sizes)
	if (rc < 0) {
		err("cannot read " sizes)
		return
	}
	n = 0
	bad = 0
	while ((rc = (getline line < hexdump)) > 0) {
		gsub(/ /, "", line)
		if (line !~ /^([0-9a-f][0-9a-f])*$/) bad = 1
		CHUNK[++n] = line
	}
	close(hexdump)
	# Join pairwise, so the total copying stays n log n, not n^2.
	while (n > 1) {
		m = 0
		for (i = 1; i <= n; i += 2) CHUNK[++m] = CHUNK[i] ((i < n) ? CHUNK[i + 1] : "")
		for (i = m + 1; i <= n; i++) delete CHUNK[i]
		n = m
	}
	all = (n == 1) ? CHUNK[1] : ""
	delete CHUNK
	if (rc < 0 || bad || length(all) != 2 * want) {
		err("binary dump inconsistent: wc counted " want " bytes, od gave " int(length(all) / 2))
		return
	}
	off = 1
	for (f = 1; f <= nb; f++) {
		BLOB[bname[f]] = substr(all, off, 2 * bsize[f])
		off += 2 * bsize[f]
	}
}
