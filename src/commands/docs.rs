//! `completions` and `man`: generated from the same clap definition as the parser.

use crate::error::Error;
use crate::exit;
use crate::output::Console;

pub(super) fn completions(
    shell: clap_complete::Shell,
    mut definition: clap::Command,
) -> Result<u8, Error> {
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut definition, "drata-svcacct", &mut buffer);
    write_stdout(&buffer)
}

pub(super) fn man(definition: clap::Command) -> Result<u8, Error> {
    let mut buffer = Vec::new();
    clap_mangen::Man::new(definition)
        .render(&mut buffer)
        .map_err(Error::Stdout)?;
    write_stdout(&buffer)
}

fn write_stdout(bytes: &[u8]) -> Result<u8, Error> {
    use std::io::Write;
    let mut out = Console::default().stdout();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)?;
    Ok(exit::SUCCESS)
}
