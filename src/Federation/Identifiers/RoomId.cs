namespace Matrix.Federation.Identifiers;

/// <summary>A room ID: <c>!opaque:server</c>, or <c>!opaque</c> without a server from room version 12.</summary>
public readonly record struct RoomId
{
    public string Value { get; }

    private RoomId(string value) => Value = value;

    public override string ToString() => Value;

    public static bool TryParse(string? text, out RoomId roomId)
    {
        roomId = default;
        if (string.IsNullOrEmpty(text) || text.Length < 2 || text[0] != '!' || System.Text.Encoding.UTF8.GetByteCount(text) > 255)
            return false;
        var colon = text.IndexOf(':');
        if (colon == 1 || (colon > 0 && !ServerName.TryParse(text[(colon + 1)..], out _)))
            return false;
        if (text.Any(c => c < '\x21' || c > '\x7E'))
            return false;
        roomId = new RoomId(text);
        return true;
    }
}
