using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Loads and changes users' push rules. The ruleset lives in the user's <c>m.push_rules</c> account data (as Synapse
/// keeps it), so every change also reaches the user's clients through /sync.
/// </summary>
public sealed class PushRuleService(Database db, AccountDataStore accountData, StreamPositions streams, Sync.SyncNotifier notifier)
{
    public const string AccountDataType = "m.push_rules";

    // Changes read, modify and write one document: serialised, so two at once cannot lose one.
    private readonly SemaphoreSlim _writer = new(1, 1);
    // Every event is evaluated against its local members' rules: the compiled rulesets are kept, replaced on change.
    private readonly ConcurrentDictionary<string, CompiledPushRules> _rulesets = new(StringComparer.Ordinal);
    private const int MaxCachedRulesets = 100_000;

    /// <summary>The user's whole ruleset, compiled (cached, loaded through the caller's session).</summary>
    public async Task<CompiledPushRules> RulesetAsync(DbSession s, string userId) =>
        _rulesets.TryGetValue(userId, out var cached) ? cached : Remember(userId, await LoadAsync(s, userId));

    /// <summary>The rulesets of an event's recipients through its session, those not in memory read in one query.</summary>
    public Task<Dictionary<string, CompiledPushRules>> RulesetsAsync(DbSession s, IReadOnlyCollection<string> userIds) =>
        accountData.GlobalOfUsersAsync(s, userIds, AccountDataType, _rulesets.GetValueOrDefault, (userId, stored) => Remember(userId, Parse(stored)));

    private CompiledPushRules Remember(string userId, PushRuleSet rules)
    {
        var ruleset = PushEvaluator.Compile(rules.ToJson(userId));
        if (_rulesets.Count >= MaxCachedRulesets)
            _rulesets.Clear();
        _rulesets[userId] = ruleset;
        return ruleset;
    }

    public async Task<PushRuleSet> LoadAsync(string userId, CancellationToken ct) =>
        await db.ReadAsync(s => LoadAsync(s, userId), ct);

    private async Task<PushRuleSet> LoadAsync(DbSession s, string userId) =>
        Parse(await accountData.GetAsync(s, userId, AccountDataStore.Global, AccountDataType));

    private static PushRuleSet Parse(string? stored) =>
        PushRuleSet.FromStored(stored is null ? null : JsonNode.Parse(stored)?["global"] as JsonObject);

    /// <summary>Applies <paramref name="change"/> and stores the result; false (nothing stored) when it reports no such rule.</summary>
    public async Task<bool> ChangeAsync(string userId, Func<PushRuleSet, bool> change, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            var changed = await db.WriteAsync(async s =>
            {
                var rules = await LoadAsync(s, userId);
                if (!change(rules))
                    return false;
                var content = new JsonObject { ["global"] = rules.ToJson(userId) };
                _rulesets.TryRemove(userId, out _);
                await accountData.SetAsync(s, userId, AccountDataStore.Global, AccountDataType, content.ToJsonString(),
                    await streams.NextAsync(s, "account_data"));
                return true;
            }, ct);
            // Dropped again after the commit: an evaluation in between may have cached the old rules.
            _rulesets.TryRemove(userId, out _);
            if (changed)
                notifier.Notify([userId]);
            return changed;
        }
        finally
        {
            _writer.Release();
        }
    }
}
