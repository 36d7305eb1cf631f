using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Federation.Json;

/// <summary>
/// Parses untrusted JSON under the spec's rules: valid UTF-8, no lone surrogates, no duplicate keys, bounded depth,
/// and (unless lenient numbers are allowed, as for events of room versions 1-5) only integers in the canonical range.
/// </summary>
public static class StrictJsonParser
{
    public const int DefaultMaxDepth = 64;

    public static JsonObject ParseObject(ReadOnlySpan<byte> utf8, bool lenientNumbers = false, int maxDepth = DefaultMaxDepth) =>
        Parse(utf8, lenientNumbers, maxDepth) as JsonObject ?? throw new CanonicalJsonException("expected a JSON object");

    public static JsonNode? Parse(ReadOnlySpan<byte> utf8, bool lenientNumbers = false, int maxDepth = DefaultMaxDepth)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = maxDepth, CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read())
                throw new CanonicalJsonException("empty JSON");
            var root = ReadValue(ref reader, lenientNumbers);
            if (reader.Read())
                throw new CanonicalJsonException("trailing data after the JSON value");
            return root;
        }
        catch (JsonException e)
        {
            throw new CanonicalJsonException($"invalid JSON: {FirstSentence(e.Message)}");
        }
        catch (InvalidOperationException)
        {
            throw new CanonicalJsonException("invalid JSON string (lone surrogate or bad escape)");
        }
    }

    private static JsonNode? ReadValue(ref Utf8JsonReader reader, bool lenientNumbers)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var obj = new JsonObject();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    var key = reader.GetString()!;
                    if (obj.ContainsKey(key))
                        throw new CanonicalJsonException($"duplicate key '{key}'");
                    reader.Read();
                    obj.Add(key, ReadValue(ref reader, lenientNumbers));
                }
                return obj;
            case JsonTokenType.StartArray:
                var array = new JsonArray();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    array.Add(ReadValue(ref reader, lenientNumbers));
                return array;
            case JsonTokenType.String:
                return JsonValue.Create(reader.GetString()!);
            case JsonTokenType.Number:
                return ReadNumber(ref reader, lenientNumbers);
            case JsonTokenType.True:
                return JsonValue.Create(true);
            case JsonTokenType.False:
                return JsonValue.Create(false);
            case JsonTokenType.Null:
                return null;
            default:
                throw new CanonicalJsonException($"unexpected {reader.TokenType}");
        }
    }

    private static JsonNode ReadNumber(ref Utf8JsonReader reader, bool lenientNumbers)
    {
        var isInteger = reader.ValueSpan.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0;
        if (isInteger && reader.TryGetInt64(out var integer) && integer is >= CanonicalJson.MinSafeInteger and <= CanonicalJson.MaxSafeInteger)
            return JsonValue.Create(integer);
        if (!lenientNumbers)
            throw new CanonicalJsonException(isInteger
                ? "integer outside the range [-(2^53)+1, (2^53)-1]"
                : "floats and exponents are not allowed in canonical JSON");
        using var document = JsonDocument.Parse(reader.ValueSpan.ToArray());
        return JsonValue.Create(document.RootElement.Clone())!;
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
