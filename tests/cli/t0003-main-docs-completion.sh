#!/bin/bash
# t0003: --help, the man pages and the bash, zsh and fish completions agree with the option tables
#
# The option tables are read from the binary itself (`smtptls --complete` and
# `smtptls --complete=COMMAND`), so a new option or command is checked here
# without touching this file.
. "$TOP_SRCDIR/tests/lib/tap.sh"
need mandoc zsh fish

MANDIR=$TOP_SRCDIR/man
BASH_COMP=$TOP_SRCDIR/completions/bash/smtptls
ZSH_COMP=$TOP_SRCDIR/completions/zsh/_smtptls
FISH_COMP=$TOP_SRCDIR/completions/fish/smtptls.fish

# The completions run "smtptls" as the user would: from $PATH.
mkdir -p "$T/bin" "$T/home" "$T/files"
ln -s "$SMTPTLS" "$T/bin/smtptls"
export PATH="$T/bin:$PATH"
: >"$T/files/server.pem"

# A regex matching STRING literally.
re_quote() { printf '%s' "$1" | sed 's/[][\.*^$?+(){}|/]/\\&/g'; }

# A man page as plain text (no overstrike).
man_text() { mandoc -T ascii "$1" | sed 's/.\x08//g'; }

# One section of a rendered man page, without its heading.
man_section() { printf '%s\n' "$1" | awk -v s="$2" '/^[A-Z]/ { on = ($0 == s); next } on'; }

# The first line of a rendered option list entry: "  -d, --digest=NAME" or "  --tlsa  Print".
tag_re() {
	if [ -n "$2" ]; then
		echo "^ +$(re_quote "$2"), $(re_quote "$1")([=[ ]|$)"
	else
		echo "^ +(-[^ ], )?$(re_quote "$1")([=[ ]|$)"
	fi
}

# bash_complete WORD...: what _smtptls puts in COMPREPLY for the command line
# WORD... with the cursor at the end of the last word, one per line, sorted.
bash_complete() {
	(cd "$T/files" && bash --norc --noprofile -c '
		source "$1" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_smtptls
		((${#COMPREPLY[@]})) && printf "%s\n" "${COMPREPLY[@]}"
		exit 0' bash "$BASH_COMP" "$@") | LC_ALL=C sort
}

# fish_complete LINE: what fish offers for LINE, one "candidate<TAB>doc" per line.
fish_complete() {
	# shellcheck disable=SC2016 # fish expands $argv
	HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share \
		fish --no-config -c 'set -g fish_complete_path; source $argv[1]; complete -C"$argv[2]"' \
		"$FISH_COMP" "$1"
}

# zsh_specs [COMMAND]: the _arguments specs the zsh completion builds.
zsh_specs() {
	zsh -f -c '
		_call_program() { shift; eval "$@"; }
		compdef() { :; }
		source $1 || exit 1
		local -a reply _st_cmds
		local _st_args
		_smtptls_specs smtptls $2
		print -rl -- $reply' zsh "$ZSH_COMP" "${1-}"
}

sorted_words() { printf '%s\n' "$1" | tr ' ' '\n' | LC_ALL=C sort; }

# --- the tables --------------------------------------------------------------

st --complete
is "$rc" 0 "--complete exits 0"
top=$out
commands=$(printf '%s\n' "$top" | awk -F'\t' '$1 == "command" { print $2 }')
globals=$(printf '%s\n' "$top" | awk -F'\t' '$1 == "option" { print $2 }')
isnt "$commands" "" "--complete lists commands"
isnt "$globals" "" "--complete lists global options"

built=
for c in $commands; do
	st "$c" --help
	is "$rc" 0 "$c --help exits 0"
	case $out in
	*"not built yet"*) ;;
	*) built="$built $c" ;;
	esac
done
isnt "$built" "" "at least one command is built:$built"

smtptls_txt=$(man_text "$MANDIR/smtptls.1")
st --help
top_help=$out

# --- the man pages -----------------------------------------------------------

for page in "$MANDIR"/*.1; do
	name=${page##*/}
	run mandoc -T lint -W warning "$page"
	is "$out$err" "" "$name: mandoc -T lint -W warning is silent"
	for sec in "EXIT STATUS" "EXAMPLES"; do
		grep -Eq "^\.(Sh|SH) \"?$sec\"?\$" "$page"
		ok $? "$name has an $sec section"
	done
done

# every value of enum st_exit, with its number, in smtptls(1) EXIT STATUS
exits=$(sed -n 's/^[[:space:]]*ST_EXIT_[A-Z_]*[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
	"$TOP_SRCDIR/cmd/cmd.h")
isnt "$exits" "" "cmd/cmd.h: the values of enum st_exit are found"
exit_sec=$(man_section "$smtptls_txt" "EXIT STATUS")
for n in $exits; do
	like "$exit_sec" "^ +$n( |$)" "smtptls.1 EXIT STATUS lists $n"
done

for c in $commands; do
	like "$(man_section "$smtptls_txt" COMMANDS)" "^ +$c( |$)" "smtptls.1 COMMANDS lists $c"
done
for c in $built; do
	ok "$([ -f "$MANDIR/smtptls-$c.1" ]; echo $?)" "man/smtptls-$c.1 exists for the built command $c"
	like "$(man_section "$smtptls_txt" "SEE ALSO")" "smtptls-$c\(1\)" "smtptls.1 SEE ALSO names smtptls-$c(1)"
done

# --- global options: smtptls --help, smtptls.1, completion before the command -

bash_long=$(bash_complete smtptls --)
bash_short=$(bash_complete smtptls -)
# tabs are IFS white space, which read merges: the files use \037 instead
printf '%s\n' "$top" | awk -F'\t' '$1 == "option"' | tr '\t' '\037' >"$T/globals.tsv"
while IFS=$'\037' read -r _ long short argkind values _; do
	like "$top_help" "$(tag_re "$long" "$short")" "smtptls --help lists $long${short:+ ($short)}"
	like "$smtptls_txt" "$(tag_re "$long" "$short")" "smtptls.1 documents $long${short:+ ($short)}"
	like "$bash_long" "^$(re_quote "$long")=?\$" "bash: smtptls -- offers $long"
	if [ -n "$short" ]; then
		like "$bash_short" "^$(re_quote "$short")\$" "bash: smtptls - offers $short"
	fi
done <"$T/globals.tsv"

# --- each built command: --help, its man page, bash, fish and zsh ------------

for c in $built; do
	st --complete="$c"
	is "$rc" 0 "--complete=$c exits 0"
	table=$out
	printf '%s\n' "$table" | awk -F'\t' '$1 == "option"' | tr '\t' '\037' >"$T/$c.tsv"
	args=$(printf '%s\n' "$table" | awk -F'\t' '$1 == "args" { print $2 }')
	st "$c" --help
	help=$out
	page=$MANDIR/smtptls-$c.1
	txt=$( [ -f "$page" ] && man_text "$page")
	bash_long=$(bash_complete smtptls "$c" --)
	bash_short=$(bash_complete smtptls "$c" -)
	fish_long=$(fish_complete "smtptls $c --")
	zspecs=$(zsh_specs "$c")

	while IFS=$'\037' read -r _ long short argkind values _; do
		o="$c $long${short:+ ($short)}"
		re=$(tag_re "$long" "$short")
		like "$help" "$re" "smtptls $c --help lists $long${short:+ ($short)}"
		if printf '%s\n' "$globals" | grep -qxF -- "$long"; then
			if printf '%s\n' "$txt" | grep -Eq -- "$re"; then
				ok 0 "$o: documented in smtptls-$c.1"
			else
				like "$smtptls_txt" "$re" "$o: documented in smtptls-$c.1 or, global, in smtptls.1"
			fi
		else
			like "$txt" "$re" "$o: documented in smtptls-$c.1"
		fi
		like "$bash_long" "^$(re_quote "$long")=?\$" "bash: smtptls $c -- offers $long"
		[ -n "$short" ] && like "$bash_short" "^$(re_quote "$short")\$" "bash: smtptls $c - offers $short"
		like "$fish_long" "^$(re_quote "$long")("$'\t'"|\$)" "fish: smtptls $c -- offers $long"
		like "$zspecs" "^([(][^)]*[)]|[*])?$(re_quote "$long")[=[]" "zsh: a spec for $o"

		# the values of the option's argument
		case $values in
		"") want= ;;
		@file) want=server.pem ;;
		@dir) want= ;;
		*) want=$(sorted_words "$values") ;;
		esac
		if [ "$argkind" = required ]; then
			got=$(bash_complete smtptls "$c" "$long" "")
			case $values in
			@file) like "$got" "^server\.pem\$" "bash: smtptls $c $long <TAB> offers files" ;;
			@dir) ;;
			*) is "$got" "$want" "bash: smtptls $c $long <TAB> offers ${values:-nothing}" ;;
			esac
			if [ -n "$short" ] && [ "$values" != @file ] && [ "$values" != @dir ]; then
				got=$(bash_complete smtptls "$c" "$short" "")
				is "$got" "$want" "bash: smtptls $c $short <TAB> offers ${values:-nothing}"
			fi
		fi
		if [ -n "$argkind" ] && [ -n "$values" ] && [ "${values#@}" = "$values" ]; then
			got=$(bash_complete smtptls "$c" "$long" "=" "")
			is "$got" "$want" "bash: smtptls $c $long=<TAB> offers $values"
		fi
	done <"$T/$c.tsv"

	case $args in
	@file)
		got=$(bash_complete smtptls "$c" "")
		like "$got" "^server\.pem\$" "bash: smtptls $c <TAB> offers files"
		got=$(bash_complete smtptls "$c" -- "")
		like "$got" "^server\.pem\$" "bash: smtptls $c -- <TAB> offers files"
		;;
	"")
		got=$(bash_complete smtptls "$c" "")
		is "$got" "" "bash: smtptls $c <TAB> offers nothing"
		;;
	esac
done

# --- bash: the cases people type ---------------------------------------------

run bash --norc --noprofile -c 'source "$1" && complete -p smtptls' bash "$BASH_COMP"
like "$out" "complete -F _smtptls smtptls" "bash: the completion is registered for smtptls"

is "$(bash_complete smtptls 'fi')" "fingerprint" "bash: smtptls fi<TAB> gives fingerprint"
is "$(bash_complete smtptls "")" "$(sorted_words "$commands")" "bash: smtptls <TAB> gives the commands"
is "$(bash_complete smtptls --col)" "--color=" "bash: smtptls --col<TAB> gives --color="
is "$(bash_complete smtptls --color "")" "$(sorted_words "always auto never")" \
	"bash: smtptls --color <TAB> gives the colour modes"
is "$(bash_complete smtptls --color = a)" "$(sorted_words "always auto")" \
	"bash: smtptls --color=a<TAB> gives the modes after ="
is "$(bash_complete smtptls --color never --json 'fi')" "fingerprint" \
	"bash: global options and their values before the command are skipped"
is "$(bash_complete smtptls fingerprint --digest "")" \
	"$(sorted_words "md5 sha1 sha224 sha256 sha384 sha512")" \
	"bash: smtptls fingerprint --digest <TAB> gives the digests"
is "$(bash_complete smtptls fingerprint --digest = sha5)" "sha512" \
	"bash: smtptls fingerprint --digest=sha5<TAB> gives sha512"
is "$(bash_complete smtptls fingerprint -d sha1)" "sha1" "bash: smtptls fingerprint -d sha1<TAB>"
is "$(bash_complete smtptls fingerprint --dig)" "--digest=" "bash: smtptls fingerprint --dig<TAB>"
is "$(bash_complete smtptls fingerprint --host "")" "" "bash: no files after --host"
like "$(bash_complete smtptls fingerprint --relay-clientcerts "")" "^server\.pem\$" \
	"bash: the word after --relay-clientcerts (optional value) is a file"
like "$(bash_complete smtptls fingerprint --json --color=never "")" "^server\.pem\$" \
	"bash: files after options"
is "$(bash_complete smtptls nosuchcommand --)" "" "bash: nothing for an unknown command"

# --- fish and zsh ------------------------------------------------------------

got=$(fish_complete "smtptls fi")
like "$got" "^fingerprint"$'\t' "fish: smtptls fi gives fingerprint"
got=$(fish_complete "smtptls fingerprint --digest " | cut -f1 | LC_ALL=C sort)
is "$got" "$(sorted_words "md5 sha1 sha224 sha256 sha384 sha512")" "fish: the digests after --digest"
got=$(fish_complete "smtptls --color never " | cut -f1 | LC_ALL=C sort)
is "$got" "$(sorted_words "$commands")" "fish: the commands after a global option and its value"

run zsh -n "$ZSH_COMP"
is "$rc:$err" "0:" "zsh -n parses completions/zsh/_smtptls"
head -n 1 "$ZSH_COMP" | grep -qx '#compdef smtptls'
ok $? "zsh: the file starts with #compdef smtptls"
zspecs=$(zsh_specs)
while IFS=$'\037' read -r _ long short argkind values _; do
	like "$zspecs" "^([(][^)]*[)]|[*])?$(re_quote "$long")[=[]" "zsh: a spec for the global $long"
done <"$T/globals.tsv"
like "$(zsh_specs fingerprint)" "^[(]-d --digest[)]--digest=\[.*\]:digest:\(md5 sha1 sha224 sha256 sha384 sha512\)\$" \
	"zsh: --digest completes the digests"

done_testing
