using Matrix.Federation.Identifiers;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>Room alias grammar: <c>#localpart:server</c>, at most 255 bytes.</summary>
public static class RoomAlias
{
    public static bool IsValid(string alias) =>
        alias.Length > 2 && alias[0] == '#' && System.Text.Encoding.UTF8.GetByteCount(alias) <= 255
        && alias.IndexOf(':') is var colon && colon > 1 && ServerName.TryParse(alias[(colon + 1)..], out _)
        && !alias.AsSpan(1, colon - 1).ContainsAny([' ', '\0', ':']);

    public static string ServerOf(string alias) => alias[(alias.IndexOf(':') + 1)..];
}
