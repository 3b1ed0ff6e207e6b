//! Runs a scenario against both daemons, for each client and user, and compares the transcripts.

use std::fmt::Write as _;

use crate::client::{Client, ClientKind, User};
use crate::daemon::{log_tail, Daemon, DaemonKind, Launch};
use crate::env::Env;
use crate::outcome::Record;
use crate::session::Session;

/// A named scenario: which clients and users run it, and extra daemon configuration.
#[derive(Debug, Clone)]
pub struct Scenario {
    name: String,
    conf: String,
    /// Lines appended to the daemon under test's `nix.conf` only (after [`Scenario::conf`]'s).
    under_test_conf: String,
    clients: Vec<ClientKind>,
    users: Vec<User>,
    reference: Option<Launch>,
    under_test: Option<Launch>,
}

impl Scenario {
    /// A scenario run by both clients, as root and as the untrusted user.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            conf: String::new(),
            under_test_conf: String::new(),
            clients: ClientKind::ALL.to_vec(), users: User::ALL.to_vec(), reference: None,
            under_test: None,
        }
    }

    /// Appends lines to both daemons' `nix.conf`.
    pub fn conf(mut self, lines: &str) -> Self {
        self.conf.push_str(lines);
        if !self.conf.ends_with('\n') {
            self.conf.push('\n');
        }
        self
    }

    /// Appends lines to the `nix.conf` of the daemon under test only (they come after the
    /// common lines, so a setting given in both takes this value there).
    pub fn under_test_conf(mut self, lines: &str) -> Self {
        self.under_test_conf.push_str(lines);
        if !self.under_test_conf.ends_with('\n') {
            self.under_test_conf.push('\n');
        }
        self
    }

    /// Restricts the clients.
    pub fn clients(mut self, clients: &[ClientKind]) -> Self {
        self.clients = clients.to_vec();
        self
    }

    /// Restricts the users.
    pub fn users(mut self, users: &[User]) -> Self {
        self.users = users.to_vec();
        self
    }

    /// Compares with another reference daemon than [`DaemonKind::launch`]'s (for the harness's
    /// own tests).
    pub fn reference(mut self, launch: Launch) -> Self {
        self.reference = Some(launch);
        self
    }

    /// Tests another daemon than [`DaemonKind::launch`]'s (for the harness's own tests).
    pub fn under_test(mut self, launch: Launch) -> Self {
        self.under_test = Some(launch);
        self
    }

    /// Runs `body` against the reference daemon and then the daemon under test (same store
    /// path, everything wiped in between), for every client and user; panics with a report of
    /// every step whose result differs.
    pub fn run(self, body: impl Fn(&mut Session<'_>)) {
        let reports = self.differences(body);
        assert!(reports.is_empty(), "scenario `{}`: the daemon under test differs from the reference\n\n{}", self.name, reports.join("\n"));
    }

    /// Like [`Scenario::run`], but returns the reports (one per client and user whose runs
    /// differ) instead of panicking.
    pub fn differences(&self, body: impl Fn(&mut Session<'_>)) -> Vec<String> {
        let mut reports = Vec::new();
        for &kind in &self.clients {
            for &user in &self.users {
                let client = Client { kind, user };
                if let Some(report) = self.run_one(client, &body) {
                    reports.push(report);
                }
            }
        }
        reports
    }

    fn run_one(&self, client: Client, body: &impl Fn(&mut Session<'_>)) -> Option<String> {
        let env = Env::new(&self.conf);
        let reference_launch = self.reference.clone().unwrap_or_else(|| DaemonKind::Reference.launch(client.kind));
        let under_test_launch = self.under_test.clone().unwrap_or_else(|| DaemonKind::UnderTest.launch(client.kind));
        let reference = transcript(&env, client, DaemonKind::Reference, &reference_launch, body);
        env.reset();
        env.append_conf(&self.under_test_conf);
        let under_test = transcript(&env, client, DaemonKind::UnderTest, &under_test_launch, body);
        println!(
            "scenario {} [{} as {}]: {} steps",
            self.name,
            client.kind.name(),
            client.user.name(),
            reference.len()
        );
        if std::env::var_os("CASNIX_COMPAT_SHOW").is_some() {
            for record in &reference {
                println!("{}", record.show());
            }
        }
        let report = compare(&reference, &under_test)?;
        let log = log_tail(&env.path("logs/under-test.log"), 20);
        Some(format!(
            "== {} as {} ({}; reference: {}, under test: {}) ==\n{report}  daemon under test's log (last lines):\n{}\n",
            client.kind.name(),
            client.user.name(),
            env.root().display(),
            reference_launch,
            under_test_launch,
            log.lines().map(|l| format!("    {l}\n")).collect::<String>()
        ))
    }
}

/// Runs `body` against `daemon` and returns the records.
fn transcript(env: &Env, client: Client, daemon: DaemonKind, launch: &Launch, body: &impl Fn(&mut Session<'_>)) -> Vec<Record> {
    let running = Daemon::start(env, daemon, launch);
    let mut session = Session::new(env, client, daemon);
    body(&mut session);
    drop(running);
    session.into_records()
}

/// Every differing step, or `None` when the transcripts agree.
pub fn compare(reference: &[Record], under_test: &[Record]) -> Option<String> {
    let mut out = String::new();
    let mut differing = 0;
    for (index, (a, b)) in reference.iter().zip(under_test).enumerate() {
        if let Some(diff) = a.difference(b) {
            differing += 1;
            let _ = writeln!(out, "step {}: {}\n{diff}", index + 1, a.label);
        }
    }
    if reference.len() != under_test.len() {
        let _ = writeln!(out, "the runs took {} and {} steps", reference.len(), under_test.len());
    }
    if out.is_empty() {
        None
    } else {
        Some(format!("{differing} of {} steps differ\n{out}", reference.len()))
    }
}
