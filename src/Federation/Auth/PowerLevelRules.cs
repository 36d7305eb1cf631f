using Matrix.Federation.Events;

namespace Matrix.Federation.Auth;

/// <summary>The <c>m.room.power_levels</c> authorisation rules: well-formed content, and no change beyond the sender's own level.</summary>
internal static class PowerLevelRules
{
    public static AuthResult Check(Pdu evt, RoomPowers powers, long senderLevel)
    {
        var version = evt.Version;
        if (!PowerLevels.TryParse(evt.Content, version, out var proposed))
            return AuthResult.Reject("power levels content is malformed");
        if (version.PrivilegedCreators && proposed.Users.Keys.Any(powers.Creators.Contains))
            return AuthResult.Reject("room creators cannot be given a power level");
        if (powers.PowerLevelsEvent is null)
            return AuthResult.Allow;
        var current = powers.Levels;

        foreach (var key in PowerLevels.LevelKeys)
        {
            long? before = current.Explicit(key), after = proposed.Explicit(key);
            if (before == after)
                continue;
            if (before > senderLevel || after > senderLevel)
                return AuthResult.Reject($"sender may not change '{key}' beyond their own level");
        }

        if (!CheckMap(current.Events, proposed.Events, senderLevel))
            return AuthResult.Reject("sender may not change event levels beyond their own level");
        if (version.LimitNotificationsPowerLevels && !CheckMap(current.Notifications, proposed.Notifications, senderLevel))
            return AuthResult.Reject("sender may not change notification levels beyond their own level");

        foreach (var user in current.Users.Keys.Union(proposed.Users.Keys))
        {
            long? before = current.Users.TryGetValue(user, out var b) ? b : null;
            long? after = proposed.Users.TryGetValue(user, out var a) ? a : null;
            if (before == after)
                continue;
            if (user != evt.Sender && before >= senderLevel)
                return AuthResult.Reject($"sender may not change the level of {user}, who is at or above their own");
            if (after > senderLevel)
                return AuthResult.Reject($"sender may not raise {user} above their own level");
        }
        return AuthResult.Allow;
    }

    private static bool CheckMap(IReadOnlyDictionary<string, long> current, IReadOnlyDictionary<string, long> proposed, long senderLevel)
    {
        foreach (var key in current.Keys.Union(proposed.Keys))
        {
            long? before = current.TryGetValue(key, out var b) ? b : null;
            long? after = proposed.TryGetValue(key, out var a) ? a : null;
            if (before == after)
                continue;
            if (before > senderLevel || after > senderLevel)
                return false;
        }
        return true;
    }
}
