import CKernels

/// Strict UTF-8 validation that also refuses NUL, in one pass.
///
/// A model's header can hold a megabyte of text (a tokenizer.json kept as metadata), and the
/// standard library's validator made that the largest cost of opening a store; this one skips
/// ASCII runs 32 bytes at a time (wk_ascii_prefix, AVX2) and decodes only the non-ASCII
/// sequences.
enum UTF8Validation {
    enum Outcome: Equatable { case valid, invalid, containsNUL }

    static func check(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let base = bytes.baseAddress else { return .valid }
        let count = bytes.count
        let bytesBase = base.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < count {
            i &+= wk_ascii_prefix(bytesBase + i, count &- i)
            if i >= count { break }
            let b0 = base.load(fromByteOffset: i, as: UInt8.self)
            if b0 < 0x80 {
                if b0 == 0 { return .containsNUL }
                i &+= 1
                continue
            }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF  // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0          // no overlong 3-byte forms
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F          // no UTF-16 surrogates
            case 0xF0: length = 4; lower = 0x90          // no overlong 4-byte forms
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F          // nothing above U+10FFFF
            default: return .invalid
            }
            guard count &- i >= length else { return .invalid }
            let b1 = base.load(fromByteOffset: i &+ 1, as: UInt8.self)
            guard b1 >= lower && b1 <= upper else { return .invalid }
            var k = 2
            while k < length {
                let b = base.load(fromByteOffset: i &+ k, as: UInt8.self)
                guard b & 0xC0 == 0x80 else { return .invalid }
                k &+= 1
            }
            i &+= length
        }
        return .valid
    }
}
