#!/bin/sh
# keelson-plan.sh: run `keelson plan` on a pull request in any CI and write
# the markdown for the CI to post as a comment. Run it from the checkout of
# the pull request; see README.md.
#
# Environment (all optional):
#   TARGET_BRANCH  branch the pull request merges into (default: main)
#   REMOTE         remote holding TARGET_BRANCH (default: origin; set it empty
#                  to use a local branch)
#   HEAD_REF       revision under review (default: HEAD)
#   KEELSON_PATH   folder of the repository the sync reads (default: all)
#   KEELSON_NAME   name of the sync (default: default)
#   PLAN_OUTPUT    where to write the markdown (default: keelson-plan.md)
#   KEELSON        the keelson binary (default: keelson)
#
# Exit status: 0 when the plan was written (with or without changes), 2 when
# the head is invalid or a change would be refused (the plan is written too,
# so the comment says why), anything else on an error.
set -eu

target=${TARGET_BRANCH:-main}
remote=${REMOTE-origin}
head=${HEAD_REF:-HEAD}
output=${PLAN_OUTPUT:-keelson-plan.md}
keelson=${KEELSON:-keelson}

ref=$target
if [ -n "$remote" ]; then
	# CI checkouts are often shallow and hold only the pull request's branch.
	if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
		git fetch --quiet --unshallow "$remote" || true
	fi
	git fetch --quiet "$remote" "+refs/heads/$target:refs/remotes/$remote/$target"
	ref=$remote/$target
fi

# The merge base, not the tip of the target branch: the pull request is
# reviewed for what it changes, not for what landed on the target since.
if ! base=$(git merge-base "$ref" "$head"); then
	echo "keelson-plan: no merge base of $ref and $head; fetch the full history (e.g. fetch-depth: 0)" >&2
	exit 3
fi

set -- plan --repo . --base "$base" --head "$head" --name "${KEELSON_NAME:-default}" --format markdown
if [ -n "${KEELSON_PATH:-}" ]; then
	set -- "$@" --path "$KEELSON_PATH"
fi

set +e
"$keelson" "$@" >"$output"
code=$?
set -e

case $code in
0) echo "keelson-plan: no change; wrote $output" ;;
1) echo "keelson-plan: changes; wrote $output" ;;
2)
	if [ -s "$output" ]; then
		echo "keelson-plan: the change is invalid or would be refused; wrote $output" >&2
	fi
	exit 2
	;;
*) exit "$code" ;;
esac
