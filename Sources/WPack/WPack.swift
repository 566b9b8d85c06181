// The umbrella module: `import WPack` gives the whole library.
@_exported import LazyTensor
@_exported import Models
@_exported import WeightStore
