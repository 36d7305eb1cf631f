using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Federation.Json;

/// <summary>
/// Typed reads of JSON nodes that work whether a value was parsed (backed by a JsonElement) or built in memory
/// (backed by an int, a long, ...), which <c>JsonValue.TryGetValue&lt;long&gt;</c> alone does not.
/// </summary>
public static class JsonNodeReading
{
    public static bool TryGetInteger(this JsonNode? node, out long value)
    {
        value = 0;
        if (node is not JsonValue json || json.GetValueKind() != JsonValueKind.Number)
            return false;
        if (json.TryGetValue(out value))
            return true;
        if (json.TryGetValue<JsonElement>(out var element))
            return element.TryGetInt64(out value);
        if (json.TryGetValue<int>(out var i)) { value = i; return true; }
        if (json.TryGetValue<short>(out var s)) { value = s; return true; }
        if (json.TryGetValue<byte>(out var b)) { value = b; return true; }
        if (json.TryGetValue<uint>(out var u)) { value = u; return true; }
        if (json.TryGetValue<ulong>(out var ul) && ul <= long.MaxValue) { value = (long)ul; return true; }
        return false;
    }

    public static bool TryGetString(this JsonNode? node, out string value)
    {
        value = "";
        return node is JsonValue json && json.GetValueKind() == JsonValueKind.String && json.TryGetValue(out value!);
    }

    public static string? AsString(this JsonNode? node) => node.TryGetString(out var text) ? text : null;

    /// <summary>A number as a double (for the float power levels of room versions 1-5).</summary>
    public static bool TryGetDouble(this JsonNode? node, out double value)
    {
        value = 0;
        if (node is not JsonValue json || json.GetValueKind() != JsonValueKind.Number)
            return false;
        if (json.TryGetValue<JsonElement>(out var element))
            return element.TryGetDouble(out value);
        if (node.TryGetInteger(out var integer)) { value = integer; return true; }
        if (json.TryGetValue(out value)) return true;
        if (json.TryGetValue<float>(out var f)) { value = f; return true; }
        if (json.TryGetValue<decimal>(out var d)) { value = (double)d; return true; }
        return false;
    }
}
