# Prints, per benchmark, keelson's time over raw etcd's in each round and the
# median of those ratios. A round is one run of every variant, back to back,
# so each ratio compares the two sides under the same load.
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	split(name, part, "/"); bench = part[1]; variant = part[2]
	ns = $3
	key = bench SUBSEP variant
	n = ++count[key]
	t[bench, variant, n] = ns
	benches[bench] = 1; variants[bench, variant] = 1
}
function median(a, k,    i, j, tmp) {
	for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { tmp = a[j]; a[j] = a[j-1]; a[j-1] = tmp }
	return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
}
END {
	for (b in benches) for (vk in variants) {
		split(vk, p, SUBSEP)
		if (p[1] != b || p[2] == "etcd" || !((b, "etcd") in variants)) continue
		k = 0; delete r
		for (i = 1; (b, p[2], i) in t && (b, "etcd", i) in t; i++) r[++k] = t[b, p[2], i] / t[b, "etcd", i]
		if (k) printf "%-14s %-16s %.2fx (median of %d rounds)\n", b, p[2], median(r, k), k
	}
}
