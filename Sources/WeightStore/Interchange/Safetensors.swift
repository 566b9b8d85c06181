import LazyTensor
import Foundation

/// Hugging Face's .safetensors: an 8-byte little-endian header length, a JSON header, then the
/// tensors' bytes. Read in place from the mapping. Float8 types have no .wpk dtype and are
/// refused with a clear message; every other dtype is kept (half types widened by policy).
public enum Safetensors {
    static let dtypes: [String: DType] = [
        "F64": .float64, "F32": .float32, "F16": .float16, "BF16": .bfloat16,
        "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8,
        "U64": .uint64, "U32": .uint32, "U16": .uint16, "U8": .uint8, "BOOL": .bool,
    ]

    static func read(path: String, policy: HalfPolicy, prefix: String = "") throws -> InputBundle {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ reason: String) -> InterchangeError { InterchangeError(path, reason) }
        guard bytes.count >= 8 else { throw fail("too small to be a .safetensors file (\(bytes.count) bytes)") }
        if String(decoding: bytes.prefix(64), as: UTF8.self).hasPrefix("version https://git-lfs") {
            throw fail("this is a git-LFS pointer, not the weights; fetch them with 'git lfs pull'")
        }
        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= 100_000_000, headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) does not fit in the file: not a .safetensors file?")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        // The reference reader's rules: UTF-8 text starting with '{', one JSON object.
        guard let text = String(validating: headerBytes, as: UTF8.self) else { throw fail("header is not valid UTF-8") }
        // The reference parser allows JSON whitespace before the object.
        guard headerBytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") else {
            throw fail("header does not start with '{': not a .safetensors file?")
        }
        let header: JSONValue
        do { header = try JSONValue.parse(text) } catch { throw fail("header is not JSON (\(error))") }
        guard let pairs = header.pairs else { throw fail("header is not a JSON object") }
        if let key = header.duplicateKey { throw fail("header names '\(key)' twice") }

        var bundle = InputBundle()
        var entries: [(name: String, begin: Int, end: Int, tensor: InputTensor)] = []
        for (name, value) in pairs {
                        if name == "__metadata__" {
                if value.isNull { continue }
                guard let meta = value.pairs else { throw fail("__metadata__ is not an object") }
                if let key = value.duplicateKey { throw fail("__metadata__ names '\(key)' twice") }
                for (k, v) in meta {
                    guard let s = v.string else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    bundle.metadata.append((k, .string(s)))
                }
                continue
            }
            guard let fields = value.pairs else { throw fail("tensor '\(name)': entry is not an object") }
            if let key = value.duplicateKey { throw fail("tensor '\(name)': '\(key)' given twice") }
            if let unknown = fields.first(where: { !["dtype", "shape", "data_offsets"].contains($0.0) }) {
                throw fail("tensor '\(name)': unknown field '\(unknown.0)'")
            }
            guard let dtypeName = value["dtype"]?.string else { throw fail("tensor '\(name)': dtype missing or not a string") }
            guard let dtype = dtypes[dtypeName] else {
                throw fail("tensor '\(name)' has dtype \(dtypeName), which .wpk cannot store (float8 is not supported)")
            }
            // Integers only, as the reference reader's usize fields: 4.7, 4.0, true and -1
            // are errors, not 4, 4, 1 and a wrapped size.
            guard let shapeItems = value["shape"]?.array else { throw fail("tensor '\(name)': shape missing or not a list") }
            let shape = try shapeItems.map { d -> Int in
                guard let n = d.exactInt, n >= 0 else { throw fail("tensor '\(name)': shape \(shapeItems.map(Self.text)) is not a list of non-negative integers") }
                return n
            }
            guard shape.count <= WPKFormat.maxRank else { throw fail("tensor '\(name)' has rank \(shape.count) > 8") }
            guard let offsetItems = value["data_offsets"]?.array, offsetItems.count == 2,
                  let begin = offsetItems[0].exactInt, let end = offsetItems[1].exactInt, begin >= 0, begin <= end else {
                throw fail("tensor '\(name)': data_offsets must be two non-negative integers [begin, end] with begin <= end")
            }
            guard let elements = ShapeRules.elementCount(shape, elementSize: dtype.byteSize) else {
                throw fail("tensor '\(name)': shape \(shape) is too large")
            }
            guard end - begin == elements * dtype.byteSize else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] hold \(end - begin) bytes, its shape \(shape) of \(dtypeName) needs \(elements * dtype.byteSize)")
            }
            guard end <= bytes.count - dataStart else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] reach past the end of the file")
            }
            let data = UnsafeRawBufferPointer(rebasing: bytes[(dataStart + begin)..<(dataStart + end)])
            if dtype == .bool, let bad = ElementConversion.invalidBool(in: data) {
                throw fail("tensor '\(name)': BOOL element \(bad.index) is \(bad.value), not 0 or 1")
            }
            let stored = ElementConversion.storedType(for: dtype, policy: policy)
            let source = ElementConversion.source(bytes: data, owner: file, from: dtype, to: stored, shape: shape,
                                                  bigEndian: false, fortranOrder: false)
            entries.append((name, begin, end, InputTensor(name: prefix + name, dtype: stored, sourceDType: dtype,
                                                          shape: shape, source: source)))
        }
        // The data must be exactly the tensors, back to back: no overlap, no gap, nothing after.
        entries.sort { a, b in
            (a.begin, a.end) != (b.begin, b.end) ? (a.begin, a.end) < (b.begin, b.end) : compareBytes(a.name, b.name) < 0
        }
        var expected = 0
        for e in entries {
            guard e.begin == expected else {
                throw fail(e.begin > expected
                    ? "\(e.begin - expected) bytes before tensor '\(e.name)' belong to no tensor"
                    : "tensor '\(e.name)' overlaps the tensor before it")
            }
            expected = e.end
        }
        guard expected == bytes.count - dataStart else {
            throw fail("\(bytes.count - dataStart - expected) bytes after the last tensor belong to no tensor")
        }
        // File order, so packing reads the input front to back.
        bundle.tensors = entries.map(\.tensor)
        return bundle
    }

    private static func text(_ v: JSONValue) -> String {
        switch v {
        case let .integer(i): "\(i)"
        case let .number(d): "\(d)"
        case let .bool(b): "\(b)"
        case let .string(s): "\"\(s)\""
        case .null: "null"
        default: "..."
        }
    }

    static func name(of dtype: DType) -> String? { dtypes.first { $0.value == dtype }?.key }

    /// Writes every tensor of `store` (dtypes as stored) and its string metadata.
    public static func write(_ store: WeightStore, to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for info in store.infos {
            guard let dtype = info.interchangeDType else { throw InterchangeError(path, "tensor '\(info.name)' has an unknown dtype") }
            // safetensors reserves the name for its metadata: writing it would lose the tensor.
            guard info.name != "__metadata__" else {
                throw InterchangeError(path, "a tensor named '__metadata__' cannot be written to .safetensors (the name is reserved); unpack to .npz instead")
            }
            guard let dtypeName = name(of: dtype) else { throw InterchangeError(path, "tensor '\(info.name)': safetensors has no \(dtype)") }
            header[info.name] = ["dtype": dtypeName, "shape": info.shape, "data_offsets": [offset, offset + info.interchangeBytes]]
            offset += info.interchangeBytes
        }
        if !store.typedMetadata.isEmpty {
            header["__metadata__"] = Dictionary(uniqueKeysWithValues: store.typedMetadata.map { ($0.key, $0.value.description) })
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        let out = try FileOutput(path: path)
        do {
            var prefix = ByteSink()
            prefix.write(UInt64(json.count))
            try out.write(prefix.bytes)
            try out.write(Array(json))
            for info in store.infos { try store.withInterchangeBytes(info) { try out.write($0) } }
            // Bytes read from a file changed in place would be written as if they were its own.
            try store.checkUnchanged()
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}
