using System.Buffers;
using System.Text.Json;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>Reads a request body as a JSON object within the configured size limit.</summary>
public sealed class JsonBody(HomeserverConfig config)
{
    /// <summary>Duplicate keys are refused: which copy counts would otherwise differ between readers of the same body.</summary>
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    public async Task<JsonElement> ReadObjectAsync(HttpContext context, bool optional = false)
    {
        var body = await ReadAllAsync(context, config.Limits.MaxJsonBodyBytes);
        if (body.Length == 0 && optional)
            return JsonDocument.Parse("{}").RootElement;
        EnsureUtf8(body.Span);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, Options);
        }
        catch (JsonException)
        {
            throw MatrixException.NotJson();
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw MatrixException.BadJson("Request body must be a JSON object.");
        return document.RootElement;
    }

    /// <summary>
    /// JSON text is UTF-8 (RFC 8259). The parser checks only the structure and leaves the bytes inside strings to be
    /// decoded when read, which fails deep inside a handler: invalid bytes are refused here, before anything is done.
    /// </summary>
    public static void EnsureUtf8(ReadOnlySpan<byte> body)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body))
            throw MatrixException.NotJson("The request body is not valid UTF-8.");
    }

    /// <summary>The whole body, refused past <paramref name="limit"/> bytes (a declared length sizes the array up front).</summary>
    public static async Task<ReadOnlyMemory<byte>> ReadAllAsync(HttpContext context, long limit)
    {
        if (context.Request.ContentLength > limit)
            throw MatrixException.TooLarge($"Request body is larger than {limit} bytes.");
        using var buffer = new MemoryStream((int)Math.Min(context.Request.ContentLength ?? 0, limit));
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                if (buffer.Length + read > limit)
                    throw MatrixException.TooLarge($"Request body is larger than {limit} bytes.");
                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }
}

/// <summary>Typed access to request fields, answering wrong types with M_BAD_JSON and absent required fields with M_MISSING_PARAM.</summary>
public static class JsonFields
{
    public static string? OptionalString(this JsonElement obj, string name) => obj.TryGetProperty(name, out var value)
        ? value.ValueKind switch
        {
            JsonValueKind.String => WithoutNul(value.GetString()!, name),
            JsonValueKind.Null => null,
            _ => throw MatrixException.BadJson($"'{name}' must be a string."),
        }
        : null;

    /// <summary>NUL cannot be stored in PostgreSQL text and has no place in any identifier or name, so it is refused at the edge.</summary>
    public static string WithoutNul(string value, string name) =>
        value.Contains('\0') ? throw MatrixException.BadJson($"'{name}' must not contain NUL characters.") : value;

    public static string RequiredString(this JsonElement obj, string name) =>
        obj.OptionalString(name) ?? throw MatrixException.MissingParam(name);

    public static bool? OptionalBool(this JsonElement obj, string name) => obj.TryGetProperty(name, out var value)
        ? value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            _ => throw MatrixException.BadJson($"'{name}' must be a boolean."),
        }
        : null;

    public static long? OptionalInteger(this JsonElement obj, string name) => obj.TryGetProperty(name, out var value)
        ? value.ValueKind switch
        {
            JsonValueKind.Number when value.TryGetInt64(out var number) => number,
            JsonValueKind.Null => null,
            _ => throw MatrixException.BadJson($"'{name}' must be an integer."),
        }
        : null;

    public static JsonElement? OptionalObject(this JsonElement obj, string name) => obj.TryGetProperty(name, out var value)
        ? value.ValueKind switch
        {
            JsonValueKind.Object => value,
            JsonValueKind.Null => null,
            _ => throw MatrixException.BadJson($"'{name}' must be an object."),
        }
        : null;

    public static List<string> RequiredStringArray(this JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value))
            throw MatrixException.MissingParam(name);
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
            throw MatrixException.BadJson($"'{name}' must be an array of strings.");
        return value.EnumerateArray().Select(v => WithoutNul(v.GetString()!, name)).ToList();
    }
}
