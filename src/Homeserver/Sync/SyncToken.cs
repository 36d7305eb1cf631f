using System.Globalization;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// A sync or pagination token: the positions of every stream a client syncs, <c>s&lt;events&gt;_&lt;account
/// data&gt;_&lt;receipts&gt;_&lt;typing&gt;_&lt;presence&gt;_&lt;to-device&gt;_&lt;device lists&gt;</c>. The event position means
/// "after event <c>events</c>" and is all pagination needs. Stored positions survive restarts; typing is in memory and
/// restarts from zero. Tokens of older versions without the last positions read them as zero.
/// </summary>
public readonly record struct SyncToken(
    long Events, long AccountData = 0, long Receipts = 0, long Typing = 0, long Presence = 0, long ToDevice = 0, long DeviceLists = 0)
{
    private const int Parts = 7;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"s{Events}_{AccountData}_{Receipts}_{Typing}_{Presence}_{ToDevice}_{DeviceLists}");

    /// <summary>
    /// These positions, moved up to <paramref name="other"/>'s where it is ahead in a stored stream: a token from another
    /// process of the deployment may be ahead of this one's view for a moment, and what it covers is committed already.
    /// Typing, kept in the main process's memory, is taken as it is here.
    /// </summary>
    public SyncToken AtLeast(SyncToken other) => new(Math.Max(Events, other.Events), Math.Max(AccountData, other.AccountData),
        Math.Max(Receipts, other.Receipts), Typing, Math.Max(Presence, other.Presence), Math.Max(ToDevice, other.ToDevice),
        Math.Max(DeviceLists, other.DeviceLists));

    public static SyncToken Parse(string text, string parameter)
    {
        var digits = text.AsSpan(Math.Min(1, text.Length));
        Span<Range> parts = stackalloc Range[Parts + 1];
        var count = text.Length > 1 && text[0] == 's' ? digits.Split(parts, '_') : 0;
        Span<long> values = stackalloc long[Parts];
        if (count is 0 or > Parts)
            throw MatrixException.InvalidParam($"Invalid {parameter} token.");
        // Only the event position may be negative: history backfilled from other servers sorts before everything else.
        for (var i = 0; i < count; i++)
            if (!long.TryParse(digits[parts[i]], i == 0 ? NumberStyles.AllowLeadingSign : NumberStyles.None, CultureInfo.InvariantCulture, out values[i]))
                throw MatrixException.InvalidParam($"Invalid {parameter} token.");
        return new SyncToken(values[0], values[1], values[2], values[3], values[4], values[5], values[6]);
    }
}
