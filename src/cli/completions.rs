//! `git mso completions SHELL`: shell completion scripts.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Ctx};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso completions bash > ~/.local/share/bash-completion/completions/git-mso\n  git mso completions zsh > ~/.zfunc/_git-mso"
)]
pub struct Args {
    /// The shell to complete for.
    shell: Shell,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    // Completions are for the `git-mso` program (usage text says `git mso`):
    // every subcommand's name must derive from the same binary name.
    let mut cmd = Cli::command().bin_name("git-mso").display_name("git-mso");
    // Generated whole, then written: clap_complete panics on a write error,
    // and a reader that stops early (`| head`) is no reason to panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "git-mso", &mut script);
    if args.shell == Shell::Bash {
        // clap_complete names the bash cases of a hyphenated binary's
        // subcommands `git__subcmd__mso__…` but dispatches to `git__mso__…`:
        // without this, no subcommand's options ever complete.
        script = String::from_utf8_lossy(&script).replace("git__subcmd__mso", "git__mso").into_bytes();
    }
    if let Some(wrapper) = git_subcommand_wrapper(args.shell) {
        script.extend_from_slice(wrapper.as_bytes());
    }
    ctx.out.write_all(&script)?;
    Ok(())
}

/// How `git mso <TAB>` reaches the `git-mso` completion: git's own
/// completion hands `git <command> …` to a function named after the
/// command (`_git_mso` in bash, `_git-mso` in zsh); it calls clap's with
/// the words as `git-mso …` would have them.
fn git_subcommand_wrapper(shell: Shell) -> Option<&'static str> {
    match shell {
        Shell::Bash => Some(
            r#"
# `git mso …` (git's completion calls _git_mso): complete as `git-mso …`.
_git_mso() {
    local i=1 start=0
    while [ "$i" -lt "${#words[@]}" ]; do
        if [ "${words[$i]}" = mso ]; then start=$i; break; fi
        i=$((i + 1))
    done
    [ "$start" -gt 0 ] || return 0
    local COMP_WORDS=("git-mso" "${words[@]:$((start + 1))}")
    local COMP_CWORD=$((cword - start))
    _git__mso git-mso "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
}
"#,
        ),
        Shell::Fish => Some(
            r#"
# `git mso …`: the same completions after `git mso`.
function __git_mso_words
    set -l words (commandline -opc)
    set -l at (contains -i -- mso $words)
    and set -e words[1..$at]
    and echo $words
end
complete -c git -n '__fish_seen_subcommand_from mso' -f -a '(complete -C "git-mso "(__git_mso_words)" "(commandline -ct))'
"#,
        ),
        _ => None,
    }
}
