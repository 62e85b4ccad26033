//! rust-demo: a Rust `std` program for the sandbox's tests. It prints its arguments, counts the
//! words of a fixed text with a `HashMap` and a `BTreeMap`, sorts a `Vec`, rotates a
//! `VecDeque`, times the work with `Instant`, and exits with the code given as `--exit N`
//! (default 0). Everything it prints is deterministic, so a sandboxed run's stdout can be
//! compared byte for byte with a native run's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

const TEXT: &str = "the quick brown fox jumps over the lazy dog and the dog sleeps while \
                    the fox runs over the hill to the quick river where the brown fox drinks";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    for (i, arg) in args.iter().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let exit_code = exit_code(&args);

    let started = Instant::now();

    let mut hashed: HashMap<&str, usize> = HashMap::new();
    for word in TEXT.split_whitespace() {
        *hashed.entry(word).or_default() += 1;
    }
    let sorted: BTreeMap<&str, usize> = hashed.iter().map(|(w, n)| (*w, *n)).collect();
    println!(
        "words: {} distinct, {} total",
        sorted.len(),
        hashed.values().sum::<usize>()
    );
    for (word, count) in &sorted {
        println!("  {word}: {count}");
    }

    // A deterministic pseudo-random sequence, sorted: enough work for the clock to move.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut numbers: Vec<u64> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 1_000_000
        })
        .collect();
    numbers.sort_unstable();
    println!(
        "sorted {} numbers: min {} median {} max {}",
        numbers.len(),
        numbers[0],
        numbers[numbers.len() / 2],
        numbers[numbers.len() - 1]
    );

    let mut queue: VecDeque<u32> = (1..=10).collect();
    queue.rotate_left(3);
    queue.push_front(0);
    queue.push_back(11);
    let drained: Vec<String> = queue.drain(..).map(|n| n.to_string()).collect();
    println!("queue: {}", drained.join(" "));

    let elapsed = started.elapsed();
    if elapsed > Duration::ZERO && elapsed < Duration::from_secs(10) {
        println!("elapsed ok");
    } else {
        println!("elapsed wrong: {elapsed:?}");
    }

    std::process::exit(exit_code);
}

/// The value after `--exit`, or 0; a malformed value is reported and gives 2.
fn exit_code(args: &[String]) -> i32 {
    match args.iter().position(|a| a == "--exit") {
        None => 0,
        Some(i) => match args.get(i + 1).map(|v| v.parse::<i32>()) {
            Some(Ok(code)) => code,
            _ => {
                eprintln!("rust-demo: --exit needs an integer");
                2
            }
        },
    }
}
