//! Criterion benchmarks of the crypto core (filled in by the benchmark work).
use criterion::{Criterion, criterion_group, criterion_main};

fn sealed_box(c: &mut Criterion) {
    let key = coffre_crypto::keys::DerivedKey::from_bytes([1; 32]);
    let data = vec![0u8; 1 << 20];
    c.bench_function("sealed_box_1MiB", |b| {
        b.iter(|| coffre_crypto::caead::sealed_box_seal(&key, b"", &data).unwrap())
    });
}

criterion_group!(benches, sealed_box);
criterion_main!(benches);
