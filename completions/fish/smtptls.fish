# smtptls.fish: fish completion for smtptls(1)
#
# Everything offered here comes from the program itself: `smtptls --complete`
# lists the commands and the global options, `smtptls --complete=COMMAND` the
# options of one command and what its operands are, one per line:
#   command<TAB>NAME<TAB>SUMMARY
#   option<TAB>--LONG<TAB>-S<TAB>ARGKIND<TAB>VALUES<TAB>DOC
#   args<TAB>WHAT
# ARGKIND is "", "required" or "optional"; VALUES and WHAT are a
# space-separated word list, "@file", "@dir" or empty. A new option or
# command therefore needs no change in this file. The tables are read once,
# when fish loads this file.

command -q smtptls; or return

# Global options that take the next word as their value (--color WHEN):
# skipped when looking for the command name.
set -g __smtptls_takes_next

# The command on the command line before the cursor, if any.
function __smtptls_command
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $t
            contains -- $t $__smtptls_takes_next; and set skip 1
            continue
        end
        echo $t
        return 0
    end
    return 1
end

function __smtptls_no_command
    not __smtptls_command >/dev/null
end

function __smtptls_using -a cmd
    set -l c (__smtptls_command); and test "$c" = "$cmd"
end

# __smtptls_add CONDITION LINE: one `complete` for an option line.
function __smtptls_add -a cond line
    set -l f (string split \t -- $line)
    set -l args -c smtptls -n $cond -l (string replace -r '^--' '' -- $f[2])
    test -n "$f[3]"; and set -a args -s (string sub -s 2 -- $f[3])
    if test "$f[4]" = required
        switch "$f[5]"
            case @file
                set -a args -r -F
            case @dir
                set -a args -x -a '(__fish_complete_directories)'
            case ''
                set -a args -x
            case '*'
                set -a args -x -a $f[5]
        end
    end
    test -n "$f[6]"; and set -a args -d $f[6]
    complete $args
end

for line in (smtptls --complete 2>/dev/null)
    set -l f (string split \t -- $line)
    switch $f[1]
        case command
            complete -c smtptls -f -n __smtptls_no_command -a $f[2] -d $f[3]
            set -l cmd $f[2]
            for cline in (smtptls --complete=$cmd 2>/dev/null)
                set -l g (string split \t -- $cline)
                switch $g[1]
                    case option
                        __smtptls_add "__smtptls_using $cmd" $cline
                    case args
                        # operands: files are fish's default; anything else
                        # is offered as words, and no files
                        switch "$g[2]"
                            case @file
                            case @dir
                                complete -c smtptls -f -n "__smtptls_using $cmd" -a '(__fish_complete_directories)'
                            case ''
                                complete -c smtptls -f -n "__smtptls_using $cmd"
                            case '*'
                                complete -c smtptls -f -n "__smtptls_using $cmd" -a $g[2]
                        end
                end
            end
        case option
            __smtptls_add __smtptls_no_command $line
            if test "$f[4]" = required
                set -a __smtptls_takes_next $f[2]
                test -n "$f[3]"; and set -a __smtptls_takes_next $f[3]
            end
    end
end
