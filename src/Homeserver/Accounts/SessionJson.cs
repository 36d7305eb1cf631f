using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts;

public static class SessionJson
{
    /// <summary>The response body of login and registration.</summary>
    public static JsonObject ToJson(this LoginSession session, HomeserverConfig config)
    {
        var body = new JsonObject
        {
            ["user_id"] = session.UserId,
            ["access_token"] = session.AccessToken,
            ["device_id"] = session.DeviceId,
            ["home_server"] = config.ServerName,
        };
        if (session.RefreshToken is not null)
        {
            body["refresh_token"] = session.RefreshToken;
            body["expires_in_ms"] = session.ExpiresInMs;
        }
        return body;
    }
}
