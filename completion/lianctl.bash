# bash completion for lianctl(1): its commands and their options.
#
# The commands and options are read from "lianctl --help" and "lianctl
# COMMAND --help" of the lianctl being completed, so they are always the
# ones that program has.  Installed as bash-completion/completions/lianctl.

# The help text of lianctl ($1) for the command words that follow.
_lianctl_help()
{
	local prog=$1
	shift
	"$prog" "$@" --help 2>/dev/null
}

# Commands, one a line ("health", "journal verify"), from the global help.
_lianctl_commands()
{
	sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\( [a-z][a-z]*\)\{0,1\}\).*/\1/p'
}

# Options, one a line, followed by " ARG" when they take a value.
_lianctl_options()
{
	sed -n 's/^  \(--[a-z][-a-z]*\)\( [^ ][^ ]*\)\{0,1\}.*/\1\2/p'
}

_lianctl()
{
	local prog=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
	local prev="" commands options global w i cmd="" words=() arg
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	global=$(_lianctl_help "$prog" | _lianctl_options)
	commands=$(_lianctl_help "$prog" | _lianctl_commands)

	# The command: the first words that are neither options nor their values.
	options=$global
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == --* ]]; then
			# An option's value is the next word, unless given as --name=value.
			[[ $w != *=* ]] && grep -q -- "^$w " <<<"$options" && ((i++))
			continue
		fi
		if [[ -z $cmd ]]; then
			words+=("$w")
			if grep -qx -- "${words[*]}" <<<"$commands"; then
				cmd=${words[*]}
				options=$(printf '%s\n%s\n' "$global" \
				    "$(_lianctl_help "$prog" $cmd | _lianctl_options)")
			fi
		fi
	done

	# The value of an option: its choices ("self|guardian"), else a file.
	if [[ $prev == --* ]] && arg=$(grep -m1 -- "^$prev " <<<"$options"); then
		arg=${arg#* }
		if [[ $arg == *"|"* && $arg != *[A-Z]* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "${arg//|/ }" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi
		return 0
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(cut -d' ' -f1 <<<"$options" | sort -u)" \
		    -- "$cur")
		return 0
	fi
	if [[ -z $cmd ]]; then
		# The next word of a command: the first, or the one after words.
		mapfile -t COMPREPLY < <(compgen -W "$(
			while read -r w; do
				if ((${#words[@]} == 0)); then
					echo "${w%% *}"
				elif [[ $w == "${words[*]} "* ]]; then
					echo "${w#"${words[*]} "}"
				fi
			done <<<"$commands" | sort -u)" -- "$cur")
		return 0
	fi
	# A command's operands are files (specs, saved answers).
	mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	return 0
}

complete -F _lianctl lianctl
