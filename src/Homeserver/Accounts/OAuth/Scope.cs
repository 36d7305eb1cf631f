namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// A requested scope (spec: "Scope"): full client-server API access is required, with one device scope at most (the
/// server allocates a device when there is none) and <c>openid</c> allowed. The unstable MSC2967 spellings that
/// matrix-js-sdk and Element still send are accepted; the scope granted is written as the client asked.
/// </summary>
public sealed record Scope(string Text, string DeviceId)
{
    private const string ApiScope = "urn:matrix:client:api:*";
    private const string UnstableApiScope = "urn:matrix:org.matrix.msc2967.client:api:*";
    private const string DevicePrefix = "urn:matrix:client:device:";
    private const string UnstableDevicePrefix = "urn:matrix:org.matrix.msc2967.client:device:";
    private const int MinDeviceIdLength = 5;

    public static Scope Parse(string? requested)
    {
        var tokens = (requested ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length == 0)
            throw OAuthException.InvalidScope("A scope is required.");
        if (!tokens.Any(t => t is ApiScope or UnstableApiScope))
            throw OAuthException.InvalidScope($"The scope must include {ApiScope}.");
        var devices = tokens.Where(t => t.StartsWith(DevicePrefix, StringComparison.Ordinal) || t.StartsWith(UnstableDevicePrefix, StringComparison.Ordinal))
            .Select(t => t[(t.StartsWith(DevicePrefix, StringComparison.Ordinal) ? DevicePrefix : UnstableDevicePrefix).Length..]).ToList();
        if (devices.Count > 1)
            throw OAuthException.InvalidScope("The scope may name one device only.");
        var unknown = tokens.FirstOrDefault(t => t is not (ApiScope or UnstableApiScope or "openid")
            && !t.StartsWith(DevicePrefix, StringComparison.Ordinal) && !t.StartsWith(UnstableDevicePrefix, StringComparison.Ordinal));
        if (unknown is not null)
            throw OAuthException.InvalidScope($"Unknown scope {unknown}.");
        if (devices.Count == 1 && !IsValidDeviceId(devices[0]))
            throw OAuthException.InvalidScope(
                $"A device ID must be {MinDeviceIdLength} to {AccountService.MaxDeviceIdLength} characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.");
        var text = string.Join(' ', tokens);
        if (devices.Count == 1)
            return new Scope(text, devices[0]);
        var allocated = Secrets.NewDeviceId();
        return new Scope($"{text} {DevicePrefix}{allocated}", allocated);
    }

    /// <summary>The spec's unreserved characters (RFC 3986 §2.3), which it lets servers require.</summary>
    private static bool IsValidDeviceId(string deviceId) =>
        deviceId.Length >= MinDeviceIdLength && deviceId.Length <= AccountService.MaxDeviceIdLength
        && deviceId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~');
}
