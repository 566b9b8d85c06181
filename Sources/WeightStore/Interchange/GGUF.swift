import Foundation
import LazyTensor

/// llama.cpp's GGUF (versions 2 and 3), read in place from the mapping as strictly as .wpk:
/// every count, length, type, dimension, offset and the alignment is checked against the file
/// before it is used, so a malformed file is one clear error, never a trap or a huge allocation.
///
/// Tensors keep their stored type when .wpk has it (float32, the halves by policy, Q8_0, Q4_0,
/// Q4_1, the integers), so a quantized model is packed without requantizing and maps as a
/// zero-copy view. K-quants (Q4_K, Q6_K) are widened to float32 at pack time, with a note; any
/// other GGML type is refused by name. GGUF lists dimensions innermost first; .wpk shapes are
/// outermost first, so shapes are reversed. Metadata keeps GGUF's keys: scalars keep their
/// type, strings stay strings, and arrays (the tokenizer's tokens, scores, types and merges)
/// are stored as JSON text.
public enum GGUF {
    static let magic: UInt32 = 0x4655_4747  // "GGUF", little-endian
    static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS.
    static let maxDims = 4

    /// GGML tensor types: what each becomes in a .wpk.
    enum TensorType {
        case stored(DType, name: String)
        case widened(KQuant)
        case unsupported(String)

        init(code: UInt32) {
            switch code {
            case 0: self = .stored(.float32, name: "F32")
            case 1: self = .stored(.float16, name: "F16")
            case 2: self = .stored(.q4_0, name: "Q4_0")
            case 3: self = .stored(.q4_1, name: "Q4_1")
            case 8: self = .stored(.q8_0, name: "Q8_0")
            case 12: self = .widened(.q4_K)
            case 14: self = .widened(.q6_K)
            case 24: self = .stored(.int8, name: "I8")
            case 25: self = .stored(.int16, name: "I16")
            case 26: self = .stored(.int32, name: "I32")
            case 27: self = .stored(.int64, name: "I64")
            case 28: self = .stored(.float64, name: "F64")
            case 30: self = .stored(.bfloat16, name: "BF16")
            default:
                let names: [UInt32: String] = [
                    4: "Q4_2", 5: "Q4_3", 6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 13: "Q5_K",
                    15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
                    21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0",
                    39: "MXFP4",
                ]
                self = .unsupported(names[code].map { "\($0) (type \(code))" } ?? "unknown type \(code)")
            }
        }
    }

    public static func read(path: String, policy: HalfPolicy) throws -> InputBundle {
        let file = try MappedFile(path: path)
        return try parse(file.bytes, owner: file, path: path, policy: policy)
    }

    /// Parses a whole GGUF image. `owner` keeps the bytes alive for the tensors' sources.
    static func parse(_ bytes: UnsafeRawBufferPointer, owner: AnyObject & Sendable, path: String,
                      policy: HalfPolicy) throws -> InputBundle {
        var reader = Reader(cursor: ByteCursor(bytes), path: path)
        guard bytes.count >= 24, let magic = reader.cursor.read(UInt32.self), magic == Self.magic else {
            throw reader.fail("not a GGUF file (no 'GGUF' magic at offset 0)")
        }
        let version = try reader.u32("version")
        guard version == 2 || version == 3 else {
            throw reader.fail(version == 1 ? "GGUF version 1 is not supported (its counts are 32-bit); convert with a current llama.cpp"
                                           : "unsupported GGUF version \(version) (2 and 3 are read)")
        }
        let tensorCount = try reader.count("tensor count", minimumItemBytes: 8 + 4 + 4 + 8)
        let keyCount = try reader.count("metadata count", minimumItemBytes: 8 + 4)

        var bundle = InputBundle()
        bundle.metadata.append(("gguf.version", .int(Int64(version))))
        var keys = Set<String>()
        var alignment = Self.defaultAlignment
        for _ in 0..<keyCount {
            let key = try reader.string("metadata key")
            guard !key.isEmpty, key.utf8.count <= WPKFormat.maxNameLength else {
                throw reader.fail("metadata key '\(key.prefix(40))' is empty or longer than \(WPKFormat.maxNameLength) bytes")
            }
            guard keys.insert(key).inserted else { throw reader.fail("metadata key '\(key)' is given twice") }
            let type = try reader.u32("type of '\(key)'")
            if key == "general.alignment" {
                guard type == 4 else { throw reader.fail("general.alignment must be a uint32 (type 4), not type \(type)") }
                let value = try reader.u32("general.alignment")
                guard value > 0, value & (value - 1) == 0, value <= WPKFormat.maxAlignment else {
                    throw reader.fail("general.alignment \(value) is not a power of two up to \(WPKFormat.maxAlignment)")
                }
                alignment = Int(value)
                bundle.metadata.append((key, .int(Int64(value))))
                continue
            }
            bundle.metadata.append((key, try reader.value(type: type, key: key)))
        }

        struct Entry { var name: String; var shape: [Int]; var type: TensorType; var offset: Int; var bytes: Int }
        var entries: [Entry] = []
        var names = Set<String>()
        for _ in 0..<tensorCount {
            let name = try reader.string("tensor name")
            guard !name.isEmpty, name.utf8.count <= WPKFormat.maxNameLength else {
                throw reader.fail("tensor name '\(name.prefix(40))' is empty or longer than \(WPKFormat.maxNameLength) bytes")
            }
            guard names.insert(name).inserted else { throw reader.fail("tensor '\(name)' is listed twice") }
            let rank = try reader.u32("rank of '\(name)'")
            guard rank >= 1, rank <= Self.maxDims else { throw reader.fail("tensor '\(name)' has \(rank) dimensions (1 to \(Self.maxDims) allowed)") }
            var dims: [Int] = []
            for _ in 0..<rank {
                let d = try reader.u64("dimension of '\(name)'")
                guard d <= UInt64(Int32.max) else { throw reader.fail("tensor '\(name)' has dimension \(d), too large") }
                dims.append(Int(d))
            }
            let type = TensorType(code: try reader.u32("type of '\(name)'"))
            let offset = try reader.u64("offset of '\(name)'")
            let shape = Array(dims.reversed())
            let byteCount: Int
            switch type {
            case let .unsupported(what):
                throw reader.fail("tensor '\(name)' is \(what), which wpack cannot read; requantize the model to Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, F16 or F32")
            case let .stored(dtype, typeName):
                if dtype.isBlockQuantized, dims[0] % dtype.blockLength != 0 {
                    throw reader.fail("tensor '\(name)' is \(typeName) but its rows of \(dims[0]) are not whole blocks of \(dtype.blockLength)")
                }
                guard let n = dtype.storedBytes(shape: shape) else { throw reader.fail("tensor '\(name)': shape \(shape) is too large") }
                byteCount = n
            case let .widened(kind):
                guard dims[0] % KQuant.blockLength == 0 else {
                    throw reader.fail("tensor '\(name)' is \(kind.name) but its rows of \(dims[0]) are not whole blocks of \(KQuant.blockLength)")
                }
                guard let elements = ShapeRules.elementCount(shape, elementSize: 4) else {
                    throw reader.fail("tensor '\(name)': shape \(shape) is too large")
                }
                byteCount = elements / KQuant.blockLength * kind.blockBytes
            }
            guard offset % UInt64(alignment) == 0, offset <= UInt64(bytes.count) else {
                throw reader.fail("tensor '\(name)' has offset \(offset), not a multiple of the alignment \(alignment) inside the file")
            }
            entries.append(Entry(name: name, shape: shape, type: type, offset: Int(offset), bytes: byteCount))
        }

        // The data section starts at the first multiple of the alignment after the header.
        let dataStart = (reader.cursor.position + alignment - 1) / alignment * alignment
        guard dataStart <= bytes.count else { throw reader.fail("the file ends before its tensor data starts (offset \(dataStart))") }
        let dataLength = bytes.count - dataStart
        for e in entries where e.offset > dataLength || e.bytes > dataLength - e.offset {
            throw reader.fail("tensor '\(e.name)' (\(e.bytes) bytes at data offset \(e.offset)) reaches past the end of the file")
        }
        for (a, b) in zip(entries.sorted { $0.offset < $1.offset }, entries.sorted { $0.offset < $1.offset }.dropFirst())
        where a.offset + a.bytes > b.offset {
            throw reader.fail("tensor '\(b.name)' overlaps tensor '\(a.name)'")
        }

        var widened: [String: Int] = [:]
        for e in entries {
            let data = UnsafeRawBufferPointer(rebasing: bytes[(dataStart + e.offset)..<(dataStart + e.offset + e.bytes)])
            switch e.type {
            case let .stored(dtype, _):
                let stored = dtype.isBlockQuantized ? dtype : ElementConversion.storedType(for: dtype, policy: policy)
                let source = ElementConversion.source(bytes: data, owner: owner, from: dtype, to: stored, shape: e.shape,
                                                      bigEndian: false, fortranOrder: false)
                bundle.tensors.append(InputTensor(name: e.name, dtype: stored, sourceDType: dtype, shape: e.shape, source: source))
            case let .widened(kind):
                widened[kind.name, default: 0] += 1
                bundle.tensors.append(InputTensor(name: e.name, dtype: .float32, sourceDType: .float32, shape: e.shape,
                                                  source: Self.widening(data, kind, owner: owner)))
            case .unsupported:
                preconditionFailure("refused above")
            }
        }
        for (kind, count) in widened.sorted(by: { $0.key < $1.key }) {
            bundle.notes.append("\(count) \(kind) tensor\(count == 1 ? "" : "s") widened to float32 (wpack multiplies Q8_0, Q4_0 and Q4_1 in place, not K-quants)")
        }
        return bundle
    }

    /// Emits the float32 values of K-quant blocks, a few hundred blocks at a time.
    private static func widening(_ data: UnsafeRawBufferPointer, _ kind: KQuant, owner: AnyObject & Sendable) -> TensorSource {
        let base = UInt(bitPattern: data.baseAddress), count = data.count
        return TensorSource { emit in
            try withExtendedLifetime(owner) {
                let blocks = count / kind.blockBytes, step = 1024
                var buffer = [Float](repeating: 0, count: step * KQuant.blockLength)
                var start = 0
                while start < blocks {
                    let n = min(step, blocks - start)
                    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: base)! + start * kind.blockBytes,
                                                     count: n * kind.blockBytes)
                    try buffer.withUnsafeMutableBufferPointer { out in
                        kind.decode(raw, blocks: n, into: out.baseAddress!)
                        try emit(UnsafeRawBufferPointer(start: out.baseAddress, count: n * KQuant.blockLength * 4))
                    }
                    start += n
                }
            }
        }
    }

    /// The bounds-checked reads of the header, each failing with the field it was reading.
    struct Reader {
        var cursor: ByteCursor
        let path: String

        func fail(_ reason: String) -> InterchangeError { InterchangeError(path, reason) }

        private func truncated(_ what: String) -> InterchangeError {
            fail("the file ends inside the header (reading the \(what) at offset \(cursor.position))")
        }

        mutating func u32(_ what: String) throws -> UInt32 {
            guard let v = cursor.read(UInt32.self) else { throw truncated(what) }
            return v
        }

        mutating func u64(_ what: String) throws -> UInt64 {
            guard let v = cursor.read(UInt64.self) else { throw truncated(what) }
            return v
        }

        /// A count of items, each at least `minimumItemBytes` long, so a forged count cannot
        /// make the reader loop or allocate past what the file could hold.
        mutating func count(_ what: String, minimumItemBytes: Int) throws -> Int {
            let n = try u64(what)
            guard n <= UInt64(cursor.remaining / minimumItemBytes) else {
                throw fail("the \(what) \(n) cannot fit in the \(cursor.remaining) bytes that follow it")
            }
            return Int(n)
        }

        mutating func string(_ what: String) throws -> String {
            let length = try u64("length of a \(what)")
            guard length <= UInt64(cursor.remaining), let raw = cursor.readBytes(Int(length)) else {
                throw fail("a \(what) at offset \(cursor.position - 8) claims \(length) bytes; only \(cursor.remaining) remain")
            }
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw fail("a \(what) at offset \(cursor.position - Int(length)) is not valid UTF-8")
            }
            return s
        }

        /// One metadata value as .wpk metadata. Arrays become JSON text.
        mutating func value(type: UInt32, key: String) throws -> MetadataValue {
            if type == 9 {
                let itemType = try u32("item type of '\(key)'")
                guard itemType != 9 else { throw fail("metadata '\(key)' is an array of arrays, which wpack does not read") }
                guard let size = Self.minimumSize(itemType) else { throw fail("metadata '\(key)' has unknown item type \(itemType)") }
                let n = try count("item count of '\(key)'", minimumItemBytes: size)
                var json = "["
                json.reserveCapacity(n * 8)
                for i in 0..<n {
                    if i > 0 { json += "," }
                    json += try scalar(type: itemType, key: key).json
                }
                return .string(json + "]")
            }
            return try scalar(type: type, key: key).value
        }

        static func minimumSize(_ type: UInt32) -> Int? {
            switch type {
            case 0, 1, 7: 1
            case 2, 3: 2
            case 4, 5, 6: 4
            case 8, 10, 11, 12: 8
            default: nil
            }
        }

        private mutating func scalar(type: UInt32, key: String) throws -> (value: MetadataValue, json: String) {
            func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
                guard let v = cursor.read(T.self) else { throw truncated("value of '\(key)'") }
                return v
            }
            func int<T: FixedWidthInteger>(_ v: T) -> (MetadataValue, String) { (.int(Int64(v)), String(v)) }
            switch type {
            case 0: return int(try read(UInt8.self))
            case 1: return int(try read(Int8.self))
            case 2: return int(try read(UInt16.self))
            case 3: return int(try read(Int16.self))
            case 4: return int(try read(UInt32.self))
            case 5: return int(try read(Int32.self))
            case 10:
                let v = try read(UInt64.self)
                // Past Int64 the number is kept exactly, as text.
                return v <= UInt64(Int64.max) ? int(v) : (.string(String(v)), String(v))
            case 11: return int(try read(Int64.self))
            case 6:
                let v = Double(Float(bitPattern: try read(UInt32.self)))
                return (.double(v), Self.json(v))
            case 12:
                let v = Double(bitPattern: try read(UInt64.self))
                return (.double(v), Self.json(v))
            case 7:
                let b = try read(UInt8.self)
                guard b <= 1 else { throw fail("metadata '\(key)' is a bool stored as \(b), not 0 or 1") }
                return (.bool(b == 1), b == 1 ? "true" : "false")
            case 8:
                let s = try string("string value of '\(key)'")
                return (.string(s), JSONValue.quoted(s))
            default:
                throw fail("metadata '\(key)' has unknown value type \(type)")
            }
        }

        /// Non-finite numbers are written as Python's json module writes them (NaN, Infinity),
        /// which is lossless; standard JSON has no spelling for them.
        private static func json(_ v: Double) -> String {
            if v.isNaN { return "NaN" }
            if v.isInfinite { return v < 0 ? "-Infinity" : "Infinity" }
            return String(v)
        }
    }
}
