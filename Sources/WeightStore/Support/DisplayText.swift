/// Text from a file, made safe to print: names and values read from untrusted input reach the
/// terminal only through here, so a tensor called "\u{1B}[2J" or one holding a newline cannot
/// clear the screen or split an error over lines.
public enum DisplayText {
    /// Control characters (C0, DEL, C1), line and paragraph separators, bidirectional overrides
    /// and the backslash itself written as escapes (\n, \t, \\, \u{1B}); everything else as is.
    /// `backslash: false` leaves backslashes alone: for a message whose parts were escaped
    /// already, made safe as a whole without escaping them twice.
    public static func escaped<S: StringProtocol>(_ text: S, backslash: Bool = true) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x5C where backslash: out += "\\\\"
            case 0x5C: out += "\\"
            case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0xFEFF:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// At most `limit` characters of `text`, escaped, with an ellipsis when cut: for quoting a
    /// damaged header in an error without printing all of it.
    public static func excerpt<S: StringProtocol>(_ text: S, limit: Int = 80) -> String {
        let cut = text.count > limit
        return escaped(text.prefix(limit)) + (cut ? "..." : "")
    }
}
