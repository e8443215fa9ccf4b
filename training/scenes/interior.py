def build(builder, rng):
    raise NotImplementedError
