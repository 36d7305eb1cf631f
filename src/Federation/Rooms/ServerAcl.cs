using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;

namespace Matrix.Federation.Rooms;

/// <summary>
/// <c>m.room.server_acl</c>: whether a server may take part in a room. Globs use <c>*</c> and <c>?</c> on the host
/// without its port; IP literals are refused unless <c>allow_ip_literals</c> (default true); deny wins over allow;
/// without the event every server is allowed.
/// </summary>
public static class ServerAcl
{
    public static bool IsAllowed(string serverName, JsonObject? aclContent)
    {
        if (aclContent is null)
            return true;
        var host = ServerName.TryParse(serverName, out var parsed) ? parsed.Host : serverName;
        var allowIpLiterals = aclContent["allow_ip_literals"] is not JsonValue value || !value.TryGetValue<bool>(out var allowed) || allowed;
        if (!allowIpLiterals && ServerName.TryParse(serverName, out var name) && name.IsIpLiteral)
            return false;
        if (Patterns(aclContent["deny"]).Any(p => p.IsMatch(host)))
            return false;
        return Patterns(aclContent["allow"]).Any(p => p.IsMatch(host));
    }

    private static IEnumerable<Regex> Patterns(JsonNode? node) =>
        (node as JsonArray ?? []).Select(p => p.AsString()).OfType<string>()
            .Select(glob => new Regex("^" + Regex.Escape(glob).Replace("\\*", ".*").Replace("\\?", ".") + "$",
                RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50)));
}
