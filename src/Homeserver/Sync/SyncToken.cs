using System.Globalization;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// A position in the event stream, as sync and pagination tokens: <c>s&lt;position&gt;</c> means "after event
/// <c>position</c>". Positions are stored, so tokens survive restarts.
/// </summary>
public readonly record struct SyncToken(long Events)
{
    public override string ToString() => "s" + Events.ToString(CultureInfo.InvariantCulture);

    public static SyncToken Parse(string text, string parameter)
    {
        if (text.Length < 2 || text[0] != 's' || !long.TryParse(text.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var events))
            throw MatrixException.InvalidParam($"Invalid {parameter} token.");
        return new SyncToken(events);
    }
}
