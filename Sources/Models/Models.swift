import LazyTensor
import WeightStore

/// Home of the model layers (Linear, LayerNorm, attention, the BERT encoder, Sequential models).
/// They arrive with the models issue; the module exists now so the package layout is final.
public enum Models {}
