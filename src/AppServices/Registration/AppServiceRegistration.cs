namespace Matrix.AppServices.Registration;

/// <summary>
/// An application service as its registration file describes it (spec: application-service API, "Registration").
/// </summary>
/// <param name="Url">Where the homeserver pushes transactions; null for a service that only uses the client API.</param>
/// <param name="SenderUserId">The service's own user, <c>@sender_localpart:server</c>.</param>
/// <param name="ReceiveEphemeral">Typing, receipts and presence in transactions (<c>receive_ephemeral</c>, MSC2409).</param>
/// <param name="DeviceData">To-device messages, device-list changes and one-time-key counts for the service's users
/// (MSC3202/MSC4203, opt-in as <c>org.matrix.msc3202</c>).</param>
public sealed record AppServiceRegistration(
    string Id, string? Url, string AsToken, string HsToken, string SenderUserId, Namespaces Namespaces, bool RateLimited,
    IReadOnlyList<string> Protocols, bool ReceiveEphemeral, bool DeviceData)
{
    /// <summary>A user the service may act as: its sender, or any user of its user namespaces.</summary>
    public bool IsInterestedInUser(string userId) => userId == SenderUserId || Namespaces.Users.Any(n => n.Matches(userId));

    public bool ClaimsUserExclusively(string userId) => userId == SenderUserId || Namespaces.Users.Any(n => n.Exclusive && n.Matches(userId));

    public bool IsInterestedInAlias(string alias) => Namespaces.Aliases.Any(n => n.Matches(alias));

    public bool ClaimsAliasExclusively(string alias) => Namespaces.Aliases.Any(n => n.Exclusive && n.Matches(alias));

    public bool IsInterestedInRoom(string roomId) => Namespaces.Rooms.Any(n => n.Matches(roomId));
}
