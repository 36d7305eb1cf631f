namespace Matrix.Homeserver.Config;

/// <summary>Synapse's <c>server_notices</c>: the system user who sends admins' notices to users, and the room it uses.</summary>
public sealed class ServerNoticesConfig
{
    /// <summary>The system user's localpart; null turns server notices off.</summary>
    public string? SystemMxidLocalpart { get; set; }
    public string SystemMxidDisplayName { get; set; } = "Server Notices";
    public string? SystemMxidAvatarUrl { get; set; }
    public string RoomName { get; set; } = "Server Notices";
    public string? RoomTopic { get; set; }
    public string? RoomAvatarUrl { get; set; }
    /// <summary>Join users to their notice room instead of inviting them.</summary>
    public bool AutoJoin { get; set; }
}
