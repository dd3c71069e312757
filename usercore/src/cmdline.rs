//! The kernel shell's command-line syntax, as pure logic: words with
//! quoting, redirections and pipelines (a small subset of POSIX `sh`).
//!
//! - Words are split at unquoted blanks. `'...'` keeps everything inside
//!   as it is; `"..."` too, except that a backslash escapes `"`, `\`, `$`
//!   and `` ` ``; an unquoted backslash makes the next character ordinary.
//!   `''` and `""` are empty words.
//! - Redirections, anywhere in a command: `< FILE` (standard input from
//!   FILE), `> FILE` (standard output to FILE, truncated or created),
//!   `>> FILE` (appended), each with an optional descriptor number before
//!   it (`2> FILE`, `2>> FILE`, `0< FILE`), and `N>&M` (descriptor N
//!   becomes a copy of M, as in `2>&1`). They apply left to right.
//! - `|` joins commands into a pipeline: standard output of each into
//!   standard input of the next.
//! - A final unquoted `&` runs the line in the background (an `&` that is
//!   not last on the line is an ordinary character).
//!
//! Nothing here allocates infallibly: a line is user input, so running out
//! of memory is [`ParseError::OutOfMemory`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Where a redirection sends a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `< FILE`: opened for reading.
    Read(String),
    /// `> FILE`: opened for writing, created or truncated.
    Write(String),
    /// `>> FILE`: opened for writing at the end, created if missing.
    Append(String),
    /// `>&M` / `<&M`: a copy of descriptor M.
    Dup(u32),
}

/// One redirection: descriptor `fd` is set to `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The descriptor redirected (0 for `<`, 1 for `>` unless a number
    /// precedes the operator).
    pub fd: u32,
    /// What it becomes.
    pub target: Target,
}

/// One command of a pipeline: its words and redirections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The words, quotes removed (the command name first).
    pub words: Vec<String>,
    /// Redirections, in the order written.
    pub redirects: Vec<Redirect>,
}

/// A parsed line: one or more commands joined by `|`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    /// The commands, left to right (empty for a blank line).
    pub commands: Vec<Command>,
    /// A final `&`.
    pub background: bool,
}

/// Why a line does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A quote (`'` or `"`) was never closed.
    UnterminatedQuote(char),
    /// The line ends with an unquoted backslash.
    TrailingBackslash,
    /// A redirection operator has no file (or descriptor) after it.
    MissingTarget,
    /// `|` with no command on one side.
    EmptyCommand,
    /// A descriptor number too large (above 9) or malformed after `>&`.
    BadDescriptor,
    /// No memory for the words.
    OutOfMemory,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ParseError::UnterminatedQuote(q) => write!(f, "unterminated {q} quote"),
            ParseError::TrailingBackslash => write!(f, "a backslash ends the line"),
            ParseError::MissingTarget => write!(f, "a redirection needs a file name after it"),
            ParseError::EmptyCommand => write!(f, "`|` needs a command on each side"),
            ParseError::BadDescriptor => write!(f, "bad descriptor number in a redirection"),
            ParseError::OutOfMemory => write!(f, "out of memory"),
        }
    }
}

/// Largest descriptor a redirection may name (as a single digit, like
/// the POSIX minimum).
pub const MAX_REDIRECT_FD: u32 = 9;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    /// `<`, `>` or `>>` with its descriptor (explicit or default).
    Redir {
        fd: u32,
        op: Op,
    },
    Pipe,
    Background,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Append,
    /// `>&` or `<&`.
    Dup,
}

fn push<T>(v: &mut Vec<T>, x: T) -> Result<(), ParseError> {
    v.try_reserve(1).map_err(|_| ParseError::OutOfMemory)?;
    v.push(x);
    Ok(())
}

fn push_char(s: &mut String, c: char) -> Result<(), ParseError> {
    s.try_reserve(c.len_utf8())
        .map_err(|_| ParseError::OutOfMemory)?;
    s.push(c);
    Ok(())
}

fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    let mut word = String::new();
    // A word has started (so `''` makes an empty word).
    let mut started = false;
    // The word so far is only unquoted digits (a descriptor before `<`/`>`).
    let mut digits_only = true;
    let end_word = |tokens: &mut Vec<Token>,
                    word: &mut String,
                    started: &mut bool,
                    digits_only: &mut bool|
     -> Result<(), ParseError> {
        if *started {
            push(tokens, Token::Word(core::mem::take(word)))?;
        }
        *started = false;
        *digits_only = true;
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                end_word(&mut tokens, &mut word, &mut started, &mut digits_only)?
            }
            '\'' => {
                started = true;
                digits_only = false;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => push_char(&mut word, c)?,
                        None => return Err(ParseError::UnterminatedQuote('\'')),
                    }
                }
            }
            '"' => {
                started = true;
                digits_only = false;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => push_char(&mut word, e)?,
                            Some(other) => {
                                push_char(&mut word, '\\')?;
                                push_char(&mut word, other)?;
                            }
                            None => return Err(ParseError::UnterminatedQuote('"')),
                        },
                        Some(c) => push_char(&mut word, c)?,
                        None => return Err(ParseError::UnterminatedQuote('"')),
                    }
                }
            }
            '\\' => {
                let next = chars.next().ok_or(ParseError::TrailingBackslash)?;
                started = true;
                digits_only = false;
                push_char(&mut word, next)?;
            }
            '|' => {
                end_word(&mut tokens, &mut word, &mut started, &mut digits_only)?;
                push(&mut tokens, Token::Pipe)?;
            }
            '&' if chars.clone().all(char::is_whitespace) => {
                end_word(&mut tokens, &mut word, &mut started, &mut digits_only)?;
                push(&mut tokens, Token::Background)?;
            }
            '<' | '>' => {
                // `2>`: a word of digits right before the operator is its
                // descriptor.
                let fd = if started && digits_only {
                    let fd: u32 = word.parse().map_err(|_| ParseError::BadDescriptor)?;
                    if fd > MAX_REDIRECT_FD {
                        return Err(ParseError::BadDescriptor);
                    }
                    word.clear();
                    started = false;
                    Some(fd)
                } else {
                    end_word(&mut tokens, &mut word, &mut started, &mut digits_only)?;
                    None
                };
                let op = if chars.peek() == Some(&'&') {
                    chars.next();
                    Op::Dup
                } else if c == '>' && chars.peek() == Some(&'>') {
                    chars.next();
                    Op::Append
                } else if c == '>' {
                    Op::Write
                } else {
                    Op::Read
                };
                let default = if c == '<' { 0 } else { 1 };
                push(
                    &mut tokens,
                    Token::Redir {
                        fd: fd.unwrap_or(default),
                        op,
                    },
                )?;
            }
            c => {
                started = true;
                if !c.is_ascii_digit() {
                    digits_only = false;
                }
                push_char(&mut word, c)?;
            }
        }
    }
    end_word(&mut tokens, &mut word, &mut started, &mut digits_only)?;
    Ok(tokens)
}

/// Parses one command line (see the module comment for the syntax).
pub fn parse(line: &str) -> Result<Line, ParseError> {
    let mut out = Line::default();
    let mut current = Command::default();
    let mut tokens = tokenize(line)?.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w) => push(&mut current.words, w)?,
            Token::Redir { fd, op } => {
                let Some(Token::Word(name)) = tokens.next() else {
                    return Err(ParseError::MissingTarget);
                };
                let target = match op {
                    Op::Read => Target::Read(name),
                    Op::Write => Target::Write(name),
                    Op::Append => Target::Append(name),
                    Op::Dup => {
                        let to: u32 = name.parse().map_err(|_| ParseError::BadDescriptor)?;
                        if to > MAX_REDIRECT_FD {
                            return Err(ParseError::BadDescriptor);
                        }
                        Target::Dup(to)
                    }
                };
                push(&mut current.redirects, Redirect { fd, target })?;
            }
            Token::Pipe => {
                if current.words.is_empty() {
                    return Err(ParseError::EmptyCommand);
                }
                push(&mut out.commands, core::mem::take(&mut current))?;
            }
            Token::Background => out.background = true,
        }
    }
    if current.words.is_empty() {
        if !out.commands.is_empty() || !current.redirects.is_empty() {
            return Err(ParseError::EmptyCommand);
        }
    } else {
        push(&mut out.commands, current)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn words(line: &str) -> Vec<String> {
        let l = parse(line).unwrap();
        assert_eq!(l.commands.len(), 1, "{line}");
        l.commands[0].words.clone()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn blanks_split_words() {
        assert_eq!(words("  run   hello a\tb "), s(&["run", "hello", "a", "b"]));
        assert_eq!(parse("   ").unwrap(), Line::default());
    }

    #[test]
    fn quotes_and_backslashes() {
        assert_eq!(words("echo 'a  b' \"c d\""), s(&["echo", "a  b", "c d"]));
        assert_eq!(
            words(r#"echo "say \"hi\" \\ \n""#),
            s(&["echo", r#"say "hi" \ \n"#])
        );
        assert_eq!(words(r"echo a\ b \| \>"), s(&["echo", "a b", "|", ">"]));
        assert_eq!(words("echo '' \"\" x"), s(&["echo", "", "", "x"]));
        assert_eq!(words("echo ab'cd'\"ef\""), s(&["echo", "abcdef"]));
        assert_eq!(words("echo '|' \"<\" '>>'"), s(&["echo", "|", "<", ">>"]));
        assert_eq!(words("echo 'it''s'"), s(&["echo", "its"]));
    }

    #[test]
    fn unterminated() {
        assert_eq!(parse("echo 'abc"), Err(ParseError::UnterminatedQuote('\'')));
        assert_eq!(parse("echo \"abc"), Err(ParseError::UnterminatedQuote('"')));
        assert_eq!(parse("echo abc\\"), Err(ParseError::TrailingBackslash));
    }

    #[test]
    fn redirections() {
        let l = parse("run prog a < in > out 2>> err").unwrap();
        let c = &l.commands[0];
        assert_eq!(c.words, s(&["run", "prog", "a"]));
        assert_eq!(
            c.redirects,
            vec![
                Redirect {
                    fd: 0,
                    target: Target::Read("in".into())
                },
                Redirect {
                    fd: 1,
                    target: Target::Write("out".into())
                },
                Redirect {
                    fd: 2,
                    target: Target::Append("err".into())
                },
            ]
        );
        let l = parse("run p>/tmp/x 2>&1").unwrap();
        assert_eq!(
            l.commands[0].redirects,
            vec![
                Redirect {
                    fd: 1,
                    target: Target::Write("/tmp/x".into())
                },
                Redirect {
                    fd: 2,
                    target: Target::Dup(1)
                },
            ]
        );
        // A quoted or mixed word before `>` is a word, not a descriptor.
        let l = parse("echo '2'>f a2>g").unwrap();
        assert_eq!(l.commands[0].words, s(&["echo", "2", "a2"]));
        assert_eq!(l.commands[0].redirects.len(), 2);
        assert_eq!(l.commands[0].redirects[1].fd, 1);
        assert_eq!(parse("run p >"), Err(ParseError::MissingTarget));
        assert_eq!(parse("run p > | run q"), Err(ParseError::MissingTarget));
        assert_eq!(parse("run p 12> x"), Err(ParseError::BadDescriptor));
        assert_eq!(parse("run p >&x"), Err(ParseError::BadDescriptor));
        assert_eq!(parse("> x"), Err(ParseError::EmptyCommand));
        // A quoted file name may hold blanks and operators.
        let l = parse("run p > 'a b|c'").unwrap();
        assert_eq!(
            l.commands[0].redirects[0].target,
            Target::Write("a b|c".into())
        );
    }

    #[test]
    fn pipelines_and_background() {
        let l = parse("run a 1 | run b|run c > o &").unwrap();
        assert!(l.background);
        assert_eq!(l.commands.len(), 3);
        assert_eq!(l.commands[0].words, s(&["run", "a", "1"]));
        assert_eq!(l.commands[1].words, s(&["run", "b"]));
        assert_eq!(l.commands[2].words, s(&["run", "c"]));
        assert_eq!(l.commands[2].redirects.len(), 1);
        assert!(parse("run spin&").unwrap().background);
        // `&` not at the end is an ordinary character.
        assert_eq!(words("echo a&b"), s(&["echo", "a&b"]));
        assert_eq!(parse("| run b"), Err(ParseError::EmptyCommand));
        assert_eq!(parse("run a |"), Err(ParseError::EmptyCommand));
        assert_eq!(parse("run a || run b"), Err(ParseError::EmptyCommand));
    }

    #[test]
    fn utf8_words() {
        assert_eq!(words("echo 'größe' µ"), s(&["echo", "größe", "µ"]));
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(512))]
        /// Any input either parses or is refused with an error: no panic.
        #[test]
        fn never_panics(line in "[ a-z0-9'\"\\\\|&<>\t]{0,40}") {
            let _ = parse(&line);
        }

        /// Words quoted with single quotes come back exactly.
        #[test]
        fn single_quotes_round_trip(ws in proptest::collection::vec("[^']{0,12}", 1..6)) {
            let line: Vec<String> = ws.iter().map(|w| alloc::format!("'{w}'")).collect();
            let l = parse(&line.join(" ")).unwrap();
            proptest::prop_assert_eq!(&l.commands[0].words, &ws);
        }
    }
}
