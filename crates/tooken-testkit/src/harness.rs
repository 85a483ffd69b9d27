//! The harness of test binaries whose tests may need a [`Service`]: those
//! tests are reported **ignored** when the service is missing (one notice
//! line per missing service says so), and fail when every service is
//! required (`TOOKEN_TEST_REQUIRE_ALL=1`). See the crate docs for how a
//! binary uses it.

use std::collections::BTreeMap;
use std::future::Future;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::service::{require_all, Service};

/// A test registered by [`tests!`](crate::tests) or
/// [`store_test!`](crate::store_test) where it is written.
#[doc(hidden)]
pub struct Registered {
    /// `module_path!()::name`: the binary's own name comes first.
    pub path: &'static str,
    pub needs: &'static [Service],
    pub run: fn(),
}

inventory::collect!(Registered);

/// One test of the run.
pub struct Test {
    name: String,
    needs: Vec<Service>,
    missing: Vec<String>,
    run: Box<dyn FnOnce() + Send>,
}

impl Test {
    /// A test that runs `body` on the harness's thread.
    pub fn sync(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Test {
        Test {
            name: name.into(),
            needs: Vec::new(),
            missing: Vec::new(),
            run: Box::new(body),
        }
    }

    /// A test that runs the future `body` makes on a current-thread tokio
    /// runtime of its own, as `#[tokio::test]` does.
    pub fn asynchronous<F, Fut>(name: impl Into<String>, body: F) -> Test
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        Test::sync(name, move || block_on(0, body()))
    }

    /// The test needs `service`.
    pub fn needs(mut self, service: Service) -> Test {
        self.needs.push(service);
        self
    }

    /// The test needs something more specific than a [`Service`] (a
    /// package installed, a version): `Some(what is missing)` treats it
    /// like a missing service.
    pub fn unless(mut self, missing: Option<String>) -> Test {
        self.missing.extend(missing);
        self
    }
}

/// Runs `future` to its end on a runtime of its own: current-thread when
/// `threads` is 0 (as `#[tokio::test]`), else multi-threaded with that many
/// workers.
pub fn block_on(threads: usize, future: impl Future<Output = ()>) {
    let mut builder = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
        .block_on(future)
}

/// The harness of a binary whose tests are all registered with
/// [`tests!`](crate::tests) and [`store_test!`](crate::store_test).
pub fn main() -> ! {
    run(Vec::new())
}

/// Runs the registered tests and `more`, as libtest would, except that a
/// test needing something missing is ignored (or fails under
/// `TOOKEN_TEST_REQUIRE_ALL=1`), with one line saying so per missing thing.
pub fn run(more: Vec<Test>) -> ! {
    let (args, filters) = arguments();
    let mut tests: Vec<Test> = inventory::iter::<Registered>
        .into_iter()
        .map(|r| Test {
            name: r
                .path
                .split_once("::")
                .map_or(r.path, |(_, n)| n)
                .to_owned(),
            needs: r.needs.to_vec(),
            missing: Vec::new(),
            run: Box::new(r.run),
        })
        .collect();
    tests.extend(more);
    tests.sort_by(|a, b| a.name.cmp(&b.name));

    let required = require_all();
    // What is missing, for the tests this run selects: checked only for
    // them, so a filtered run does not wait for a service it does not use.
    let mut missing_for: BTreeMap<String, usize> = BTreeMap::new();
    let mut trials = Vec::with_capacity(tests.len());
    for test in tests {
        if !filters.is_empty() && !filters.iter().any(|f| matches(&args, f, &test.name)) {
            continue;
        }
        let selected = !args.is_filtered_out(&Trial::test(test.name.clone(), || Ok(())));
        let mut missing = test.missing.clone();
        if selected {
            for service in &test.needs {
                if let Err(reason) = service.available() {
                    missing.push(format!("{service}: {reason} ({})", service.hint()));
                }
            }
        }
        let Some(reason) = missing.first().cloned() else {
            let body = test.run;
            trials.push(Trial::test(test.name, move || {
                body();
                Ok(())
            }));
            continue;
        };
        *missing_for.entry(reason.clone()).or_default() += usize::from(selected);
        let failed = move || -> Result<(), Failed> {
            Err(format!(
                "{reason}{}",
                if required {
                    " (TOOKEN_TEST_REQUIRE_ALL=1 requires it)"
                } else {
                    ""
                }
            )
            .into())
        };
        trials.push(Trial::test(test.name, failed).with_ignored_flag(!required));
    }
    for (reason, count) in missing_for.iter().filter(|(_, n)| **n > 0) {
        if required {
            eprintln!("error: {count} tests fail, TOOKEN_TEST_REQUIRE_ALL=1 and {reason}");
        } else {
            eprintln!(
                "notice: {count} tests ignored, {reason}; \
                 TOOKEN_TEST_REQUIRE_ALL=1 makes this an error"
            );
        }
    }
    libtest_mimic::run(&args, trials).exit()
}

/// The command line, as libtest takes it. libtest-mimic takes one filter,
/// libtest any number (a test runs when it matches one): with several, they
/// are returned apart (the harness applies them) and none is left in the
/// arguments.
fn arguments() -> (Arguments, Vec<String>) {
    // Options followed by a value.
    const VALUED: [&str; 6] = [
        "--test-threads",
        "--logfile",
        "--skip",
        "--color",
        "--format",
        "-Z",
    ];
    let mut rest = Vec::new();
    let mut filters = Vec::new();
    let mut all = std::env::args();
    rest.extend(all.next());
    while let Some(arg) = all.next() {
        if VALUED.contains(&arg.as_str()) {
            rest.push(arg);
            rest.extend(all.next());
        } else if arg.starts_with('-') {
            rest.push(arg);
        } else {
            filters.push(arg);
        }
    }
    if filters.len() == 1 {
        // libtest-mimic's own filter: it counts what it filtered out.
        rest.extend(filters.pop());
    }
    (Arguments::from_iter(rest), filters)
}

/// Does `name` match `filter` (all of it with `--exact`, else a part)?
fn matches(args: &Arguments, filter: &str, name: &str) -> bool {
    match args.exact {
        true => name == filter,
        false => name.contains(filter),
    }
}

/// Registers test functions of this module with the [`harness`](self)
/// (see the crate docs): `async NAME` or `fn NAME`, each optionally after
/// `#[needs(Service, …)]` and `#[threads(N)]` (a multi-threaded runtime).
#[macro_export]
macro_rules! tests {
    () => {};
    ($(#[$a:ident($($v:tt)*)])* async $name:ident $(, $($rest:tt)*)?) => {
        $crate::tests!(@one [] [0] $(#[$a($($v)*)])* async $name);
        $($crate::tests!($($rest)*);)?
    };
    ($(#[$a:ident($($v:tt)*)])* fn $name:ident $(, $($rest:tt)*)?) => {
        $crate::tests!(@one [] [0] $(#[$a($($v)*)])* fn $name);
        $($crate::tests!($($rest)*);)?
    };
    (@one [$($s:ident)*] [$t:expr] #[needs($($n:ident),* $(,)?)] $($rest:tt)*) => {
        $crate::tests!(@one [$($s)* $($n)*] [$t] $($rest)*);
    };
    (@one [$($s:ident)*] [$t:expr] #[threads($n:expr)] $($rest:tt)*) => {
        $crate::tests!(@one [$($s)*] [$n] $($rest)*);
    };
    (@one [$($s:ident)*] [$t:expr] async $name:ident) => {
        $crate::inventory::submit! {
            $crate::harness::Registered {
                path: concat!(module_path!(), "::", stringify!($name)),
                needs: &[$($crate::Service::$s),*],
                run: || $crate::harness::block_on($t, $name()),
            }
        }
    };
    (@one [$($s:ident)*] [$t:expr] fn $name:ident) => {
        $crate::inventory::submit! {
            $crate::harness::Registered {
                path: concat!(module_path!(), "::", stringify!($name)),
                needs: &[$($crate::Service::$s),*],
                run: $name,
            }
        }
    };
}

/// A test run once per store: `mod NAME { sqlite, postgres }`, the second
/// needing PostgreSQL. The first argument is the fixture type
/// ([`Fixture`](crate::Fixture)) each run starts on a fresh store; a binary
/// usually wraps this in a `store_test!` of its own that names it.
///
/// `async fn NAME(app) { … }`, `async fn NAME(app with ADJUST) { … }`
/// where `ADJUST` changes the server's state before it serves
/// (`FnOnce(AppState) -> AppState`), each also with `mut app`.
#[macro_export]
macro_rules! store_test {
    ($fixture:ty; async fn $name:ident($app:ident) $body:block) => {
        $crate::store_test!(@emit $fixture, $name, $app, (|state| state), $body);
    };
    ($fixture:ty; async fn $name:ident(mut $app:ident) $body:block) => {
        $crate::store_test!(@emit $fixture, $name, $app, (|state| state), {
            let mut $app = $app;
            $body
        });
    };
    ($fixture:ty; async fn $name:ident(mut $app:ident with $adjust:expr) $body:block) => {
        $crate::store_test!(@emit $fixture, $name, $app, ($adjust), {
            let mut $app = $app;
            $body
        });
    };
    ($fixture:ty; async fn $name:ident($app:ident with $adjust:expr) $body:block) => {
        $crate::store_test!(@emit $fixture, $name, $app, ($adjust), $body);
    };
    (@emit $fixture:ty, $name:ident, $app:ident, ($adjust:expr), $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[allow(unused_mut)]
            async fn run($app: $fixture) $body

            async fn on(backend: $crate::Backend) {
                run(<$fixture as $crate::Fixture>::start(backend, $adjust).await).await
            }

            async fn sqlite() {
                on($crate::Backend::Sqlite).await
            }

            async fn postgres() {
                on($crate::Backend::Postgres).await
            }

            $crate::tests! {
                async sqlite,
                #[needs(Postgres)] async postgres,
            }
        }
    };
}
