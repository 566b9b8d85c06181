import LazyTensor
import WeightStore

/// A lookup table of rows (token or position embeddings), [rows, width].
public struct Embedding: Sendable {
    public let table: Tensor

    public init(table: Tensor) { self.table = table }

    public init(store: WeightStore, name: String, rows: Int? = nil, width: Int? = nil) throws {
        // Kept as stored when coded: a lookup decodes only the rows it picks.
        let t = try store.weight(name, coded: true)
        guard t.rank == 2, rows.map({ t.shape[0] == $0 }) ?? true, width.map({ t.shape[1] == $0 }) ?? true else {
            throw ModelError.wrongShape(name: name, expected: [rows ?? -1, width ?? -1], actual: t.shape)
        }
        table = t
    }

    public func callAsFunction(_ ids: [Int], shape: [Int]) -> Tensor { table.gatherRows(ids, indexShape: shape) }

    /// Rows for an int32 / int64 tensor of ids: shape ids.shape + [width]. The ids are read when
    /// the kernel runs, so a decode loop's lookups share one plan.
    public func callAsFunction(_ ids: Tensor) -> Tensor { table.take(ids, axis: 0) }
}
