using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Federation.Json;

/// <summary>
/// The canonical JSON encoding of the spec's appendix: keys sorted by code point, no insignificant whitespace,
/// UTF-8, only the escapes JSON requires, integers without exponent or fraction.
/// </summary>
public static class CanonicalJson
{
    public const long MaxSafeInteger = (1L << 53) - 1;
    public const long MinSafeInteger = -MaxSafeInteger;

    // Each thread's encoding buffer, reused: WriteString asks for room for its worst case (six bytes a character), so a
    // fresh buffer per event grew several times over and made event hashing and signing a large share of allocations.
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    private const int MaxKeptBuffer = 1 << 20;

    public static byte[] Encode(JsonNode? node)
    {
        var buffer = TakeBuffer();
        Write(buffer, node);
        return Finish(buffer);
    }

    private static ArrayBufferWriter<byte> TakeBuffer()
    {
        var buffer = t_buffer ?? new ArrayBufferWriter<byte>(4096);
        t_buffer = null;
        return buffer;
    }

    private static byte[] Finish(ArrayBufferWriter<byte> buffer)
    {
        var bytes = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity <= MaxKeptBuffer)
        {
            buffer.ResetWrittenCount();
            t_buffer = buffer;
        }
        return bytes;
    }

    public static string EncodeToString(JsonNode? node) => Encoding.UTF8.GetString(Encode(node));

    /// <summary>Encodes an object leaving out the named top-level keys (e.g. <c>signatures</c>, <c>unsigned</c>).</summary>
    public static byte[] EncodeWithout(JsonObject obj, params ReadOnlySpan<string> excludedKeys)
    {
        var buffer = TakeBuffer();
        var excluded = excludedKeys.ToArray();
        WriteObject(buffer, obj, key => Array.IndexOf(excluded, key) < 0);
        return Finish(buffer);
    }

    /// <summary>
    /// Encodes an object as it would be with <paramref name="replacedKey"/> set to <paramref name="replacement"/>, keeping
    /// only the top-level keys <paramref name="include"/> accepts, without making that copy of it.
    /// </summary>
    public static byte[] EncodeSelected(JsonObject obj, Func<string, bool> include, string replacedKey, JsonNode replacement)
    {
        var buffer = TakeBuffer();
        WriteObject(buffer, obj, include, (replacedKey, replacement));
        return Finish(buffer);
    }

    public static void Write(IBufferWriter<byte> output, JsonNode? node)
    {
        switch (node)
        {
            case null:
                WriteAscii(output, "null");
                break;
            case JsonObject obj:
                WriteObject(output, obj, static _ => true);
                break;
            case JsonArray array:
                WriteByte(output, (byte)'[');
                for (var i = 0; i < array.Count; i++)
                {
                    if (i > 0) WriteByte(output, (byte)',');
                    Write(output, array[i]);
                }
                WriteByte(output, (byte)']');
                break;
            case JsonValue value:
                WriteValue(output, value);
                break;
        }
    }

    private static void WriteObject(IBufferWriter<byte> output, JsonObject obj, Func<string, bool> include,
        (string Key, JsonNode Value)? replaced = null)
    {
        var keys = new List<string>(obj.Count + 1);
        foreach (var (key, _) in obj)
            if (include(key) && key != replaced?.Key)
                keys.Add(key);
        if (replaced is { Key: var replacedKey } && include(replacedKey))
            keys.Add(replacedKey);
        keys.Sort(CodePointComparer.Instance);
        WriteByte(output, (byte)'{');
        for (var i = 0; i < keys.Count; i++)
        {
            if (i > 0) WriteByte(output, (byte)',');
            WriteString(output, keys[i]);
            WriteByte(output, (byte)':');
            Write(output, keys[i] == replaced?.Key ? replaced.Value.Value : obj[keys[i]]);
        }
        WriteByte(output, (byte)'}');
    }

    private static void WriteValue(IBufferWriter<byte> output, JsonValue value)
    {
        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                WriteString(output, value.GetValue<string>());
                return;
            case JsonValueKind.True:
                WriteAscii(output, "true");
                return;
            case JsonValueKind.False:
                WriteAscii(output, "false");
                return;
            case JsonValueKind.Null:
                WriteAscii(output, "null");
                return;
            case JsonValueKind.Number:
                WriteAscii(output, FormatNumber(value));
                return;
            default:
                throw new CanonicalJsonException($"cannot encode a {value.GetValueKind()} value");
        }
    }

    /// <summary>
    /// Integers (including <c>-0</c> and integral exponent forms such as <c>1e10</c>) are written as plain integers.
    /// Fractions only occur in lenient room versions (1-5); they keep the text the sender wrote.
    /// </summary>
    private static string FormatNumber(JsonValue value)
    {
        if (value.TryGetInteger(out var integer))
            return integer.ToString(CultureInfo.InvariantCulture);
        if (value.TryGetValue<JsonElement>(out var element))
        {
            var raw = element.GetRawText();
            if (decimal.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var exact) && exact == decimal.Truncate(exact)
                && exact >= long.MinValue && exact <= long.MaxValue)
                return ((long)exact).ToString(CultureInfo.InvariantCulture);
            return raw;
        }
        if (!value.TryGetDouble(out var number) || !double.IsFinite(number))
            throw new CanonicalJsonException("NaN, infinities and unknown number types are not JSON");
        if (number == Math.Truncate(number) && Math.Abs(number) <= MaxSafeInteger)
            return ((long)number).ToString(CultureInfo.InvariantCulture);
        return number.ToString("R", CultureInfo.InvariantCulture);
    }

    private static void WriteString(IBufferWriter<byte> output, string text)
    {
        // Six bytes per UTF-16 unit is the worst case (\u001f); a surrogate pair needs only four.
        var span = output.GetSpan(text.Length * 6 + 2);
        var n = 0;
        span[n++] = (byte)'"';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c < 0x80)
            {
                if (c >= 0x20 && c != '"' && c != '\\')
                {
                    span[n++] = (byte)c;
                    continue;
                }
                span[n++] = (byte)'\\';
                switch (c)
                {
                    case '"': span[n++] = (byte)'"'; break;
                    case '\\': span[n++] = (byte)'\\'; break;
                    case '\b': span[n++] = (byte)'b'; break;
                    case '\t': span[n++] = (byte)'t'; break;
                    case '\n': span[n++] = (byte)'n'; break;
                    case '\f': span[n++] = (byte)'f'; break;
                    case '\r': span[n++] = (byte)'r'; break;
                    default:
                        span[n++] = (byte)'u';
                        span[n++] = (byte)'0';
                        span[n++] = (byte)'0';
                        span[n++] = (byte)"0123456789abcdef"[c >> 4];
                        span[n++] = (byte)"0123456789abcdef"[c & 0xF];
                        break;
                }
                continue;
            }
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out var consumed) != OperationStatus.Done)
                throw new CanonicalJsonException("string contains a lone surrogate");
            n += rune.EncodeToUtf8(span[n..]);
            i += consumed - 1;
        }
        span[n++] = (byte)'"';
        output.Advance(n);
    }

    private static void WriteAscii(IBufferWriter<byte> output, string text)
    {
        var span = output.GetSpan(text.Length);
        for (var i = 0; i < text.Length; i++)
            span[i] = (byte)text[i];
        output.Advance(text.Length);
    }

    private static void WriteByte(IBufferWriter<byte> output, byte b)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }
}
