namespace Matrix.Federation.Identifiers;

/// <summary>A user ID <c>@localpart:server</c>. Parsing accepts historical localparts; <see cref="IsValidNewLocalpart"/> is the stricter rule for new accounts.</summary>
public readonly record struct UserId
{
    public const int MaxLength = 255;

    public string Value { get; }
    public string Localpart { get; }
    public ServerName Server { get; }

    private UserId(string value, string localpart, ServerName server)
    {
        Value = value;
        Localpart = localpart;
        Server = server;
    }

    public override string ToString() => Value;

    public static UserId Create(string localpart, ServerName server) => new($"@{localpart}:{server.Value}", localpart, server);

    public static bool TryParse(string? text, out UserId userId)
    {
        userId = default;
        if (string.IsNullOrEmpty(text) || text[0] != '@' || System.Text.Encoding.UTF8.GetByteCount(text) > MaxLength)
            return false;
        var colon = text.IndexOf(':');
        if (colon < 2)
            return false;
        var localpart = text[1..colon];
        if (!localpart.All(IsHistoricalLocalpartChar) || !ServerName.TryParse(text[(colon + 1)..], out var server))
            return false;
        userId = new UserId(text, localpart, server);
        return true;
    }

    /// <summary>The localpart grammar for newly registered users: <c>a-z 0-9 . _ = - / +</c>.</summary>
    public static bool IsValidNewLocalpart(string localpart) =>
        localpart.Length > 0 && localpart.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '_' or '=' or '-' or '/' or '+');

    private static bool IsHistoricalLocalpartChar(char c) => c is >= '\x21' and <= '\x39' or >= '\x3B' and <= '\x7E';
}
