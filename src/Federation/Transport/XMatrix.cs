using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Json;

namespace Matrix.Federation.Transport;

/// <summary>The parts of an <c>Authorization: X-Matrix ...</c> header.</summary>
public sealed record XMatrixHeader(string Origin, string? Destination, string KeyId, string Signature);

/// <summary>
/// Request authentication between servers (server-server API, "Request Authentication"): the request's method, URI,
/// origin, destination and JSON body are signed as a canonical JSON object.
/// </summary>
public static class XMatrix
{
    public static JsonObject SigningObject(string method, string uri, string origin, string? destination, JsonNode? content)
    {
        var obj = new JsonObject { ["method"] = method, ["uri"] = uri, ["origin"] = origin };
        if (destination is not null)
            obj["destination"] = destination;
        if (content is not null)
            obj["content"] = content.DeepClone();
        return obj;
    }

    /// <summary>The header value for a request this server sends.</summary>
    public static string Sign(string method, string uri, string origin, string destination, JsonNode? content, Ed25519KeyPair key)
    {
        var signature = UnpaddedBase64.Encode(key.Sign(CanonicalJson.Encode(SigningObject(method, uri, origin, destination, content))));
        return $"X-Matrix origin=\"{origin}\",destination=\"{destination}\",key=\"{key.KeyId}\",sig=\"{signature}\"";
    }

    /// <summary>Parses <c>X-Matrix origin=...,destination=...,key=...,sig=...</c> (values quoted or not, any order).</summary>
    public static bool TryParse(string? header, out XMatrixHeader parsed)
    {
        parsed = null!;
        if (header is null || !header.StartsWith("X-Matrix ", StringComparison.OrdinalIgnoreCase))
            return false;
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in SplitParams(header["X-Matrix ".Length..]))
        {
            var equals = part.IndexOf('=');
            if (equals <= 0)
                return false;
            var value = part[(equals + 1)..].Trim();
            if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
                value = value[1..^1].Replace("\\\"", "\"").Replace("\\\\", "\\");
            values[part[..equals].Trim()] = value;
        }
        if (!values.TryGetValue("origin", out var origin) || !values.TryGetValue("key", out var keyId) || !values.TryGetValue("sig", out var sig))
            return false;
        parsed = new XMatrixHeader(origin, values.GetValueOrDefault("destination"), keyId, sig);
        return true;
    }

    public static bool Verify(XMatrixHeader header, string method, string uri, string? destination, JsonNode? content, ReadOnlySpan<byte> publicKey) =>
        UnpaddedBase64.TryDecode(header.Signature, out var signature)
        && Ed25519KeyPair.Verify(publicKey, CanonicalJson.Encode(SigningObject(method, uri, header.Origin, destination, content)), signature);

    /// <summary>Splits on commas outside quotes.</summary>
    private static IEnumerable<string> SplitParams(string text)
    {
        var current = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\' && quoted && i + 1 < text.Length)
            {
                current.Append(c).Append(text[++i]);
                continue;
            }
            if (c == '"')
                quoted = !quoted;
            if (c == ',' && !quoted)
            {
                yield return current.ToString();
                current.Clear();
                continue;
            }
            current.Append(c);
        }
        if (current.Length > 0)
            yield return current.ToString();
    }
}
