/// What evaluating a tensor will run, for tests and `explain()`: its kernels and, predicted
/// from the layouts the plan produces, exactly what `Stats.measure` will record when it runs
/// (kernels, bytes allocated, bytes copied by reason).
public struct ExecutionPlan: CustomStringConvertible, Sendable {
    let kernelList: [Kernel]
    let costs: [KernelCost]

    init(kernels: [Kernel], copyReason: CopyReason = .output) {
        kernelList = kernels
        costs = PlanCost.costs(of: kernels, copyReason: copyReason)
    }

    /// Kernels that will run (a planned copy whose source is already contiguous becomes a view).
    public var kernelCount: Int { costs.filter(\.runs).count }
    public var kernelNames: [String] { zip(kernelList, costs).filter { $1.runs }.map { $0.0.name } }
    /// Bytes every kernel allocates: outputs, required intermediates, packed operands and
    /// scratch buffers that are counted storage.
    public var bytesAllocated: Int { costs.reduce(0) { $0 + $1.allocated } }
    public var copiedByReason: [CopyReason: Int] { costs.reduce(into: [:]) { $0.merge($1.copied, uniquingKeysWith: +) } }
    public var bytesCopied: Int { costs.reduce(0) { $0 + $1.copied.values.reduce(0, +) } }
    /// Kernels that will compute again what an earlier evaluation computed and released.
    public var recomputedKernels: Int { zip(kernelList, costs).filter { $1.runs && $0.node.wasComputedBefore }.count }

    public var description: String {
        if kernelList.isEmpty { return "nothing to run: the tensor is already a contiguous buffer" }
        var ids: [ObjectIdentifier: Int] = [:]
        for (i, k) in kernelList.enumerated() { ids[ObjectIdentifier(k.node)] = i + 1 }
        var inputNames: [ObjectIdentifier: String] = [:]
        func leafName(_ leaf: Program.Leaf) -> String {
            let id = ObjectIdentifier(leaf.node)
            let base: String
            if let k = ids[id] { base = "k\(k)" } else {
                if inputNames[id] == nil {
                    let type = leaf.node.dtype == .float32 ? "" : " \(leaf.node.dtype)"
                    inputNames[id] = "in\(inputNames.count + 1)\(leaf.node.shape)\(type)"
                }
                base = inputNames[id]!
            }
            return leaf.steps.isEmpty ? base : base + "'"
        }
        var lines: [String] = []
        for (i, (k, cost)) in zip(kernelList, costs).enumerated() {
            let body = k.programs.map { p in p.expression(names: { leafName(p.leaves[$0]) }) }.joined(separator: ", ")
            let type = k.node.dtype == .float32 ? "" : " \(k.node.dtype)"
            var notes: [String] = cost.method.map { ["by \($0)"] } ?? []
            if !cost.runs { notes.append("free: its source is already contiguous, so the result is a view of it") }
            if cost.runs && k.node.wasComputedBefore {
                notes.append("recomputes what an earlier evaluation computed and released; kept from now on")
            }
            if cost.runs && cost.allocated != k.outputBytes { notes.append("\(cost.allocated) B allocated in all") }
            let copies = cost.copied.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) B \($0.key.rawValue)" }
            if !copies.isEmpty { notes.append("copies " + copies.joined(separator: ", ")) }
            let note = notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")"
            lines.append("k\(i + 1): \(k.name) -> \(k.node.shape)\(type), \(k.outputBytes) B\(note): \(body)")
        }
        let reasons = copiedByReason.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value) B" }
        lines.append("\(kernelCount) kernel\(kernelCount == 1 ? "" : "s"), \(bytesAllocated) B allocated, \(bytesCopied) B copied"
                     + (reasons.isEmpty ? "" : " (" + reasons.joined(separator: ", ") + ")")
                     + " (' = read through a view folded into the kernel's indexing)")
        return lines.joined(separator: "\n")
    }
}
