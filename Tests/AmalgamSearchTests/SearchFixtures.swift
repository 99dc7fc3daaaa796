import AmalgamTestSupport

/// The release's two pre-trained-seed starting vectors and jax's trained seeds (make_m2n2_release_seeds.py).
let releaseSeedsPath = fixturesDirectory + "/m2n2/release-seeds.safetensors"
