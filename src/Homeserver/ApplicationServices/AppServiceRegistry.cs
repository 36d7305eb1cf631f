using Matrix.AppServices.Registration;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// The application services of <c>app_service_config_files</c>, loaded at start-up and again on SIGHUP (the config
/// loader has already checked them), looked up by token and by the namespaces they claim. A reload swaps the whole set
/// at once: a request sees the old set or the new one, never a mix.
/// </summary>
public sealed class AppServiceRegistry
{
    private sealed record Loaded(IReadOnlyList<AppServiceRegistration> All, Dictionary<string, AppServiceRegistration> ByAsTokenHash);

    private volatile Loaded _loaded;

    public AppServiceRegistry(HomeserverConfig config) => _loaded = Load(config);

    public IReadOnlyList<AppServiceRegistration> All => _loaded.All;

    /// <summary>Loads the registration files again; throws <see cref="RegistrationException"/> (changing nothing) for an invalid set.</summary>
    public void Reload(HomeserverConfig config) => _loaded = Load(config);

    private static Loaded Load(HomeserverConfig config)
    {
        var all = config.AppServiceConfigFiles.Select(path => RegistrationFile.Load(path, config.ServerName)).ToList();
        RegistrationFile.ValidateSet(all);
        return new Loaded(all, all.ToDictionary(r => Secrets.Hash(r.AsToken), StringComparer.Ordinal));
    }

    /// <summary>The service whose <c>as_token</c> this is (compared as SHA-256 hashes, like access tokens).</summary>
    public AppServiceRegistration? ByAsToken(string token) => _loaded.ByAsTokenHash.GetValueOrDefault(Secrets.Hash(token));

    public AppServiceRegistration? ById(string id) => All.FirstOrDefault(r => r.Id == id);

    /// <summary>The service that claims the user ID exclusively, if any.</summary>
    public AppServiceRegistration? ExclusiveOwnerOfUser(string userId) => All.FirstOrDefault(r => r.ClaimsUserExclusively(userId));

    public AppServiceRegistration? ExclusiveOwnerOfAlias(string alias) => All.FirstOrDefault(r => r.ClaimsAliasExclusively(alias));

    /// <summary>400 <c>M_EXCLUSIVE</c> unless the user ID is free for <paramref name="actor"/> (null: an ordinary client) to take.</summary>
    public void CheckUserIdFree(string userId, AppServiceRegistration? actor)
    {
        if (actor is not null ? !actor.IsInterestedInUser(userId) : ExclusiveOwnerOfUser(userId) is not null)
            throw new Http.MatrixException(400, "M_EXCLUSIVE", actor is not null
                ? "This user ID is outside the application service's namespaces."
                : "This user ID is reserved by an application service.");
    }

    public void CheckAliasFree(string alias, AppServiceRegistration? actor)
    {
        if (actor is null ? ExclusiveOwnerOfAlias(alias) is not null : ExclusiveOwnerOfAlias(alias) is { } owner && owner != actor)
            throw new Http.MatrixException(400, "M_EXCLUSIVE", "This alias is reserved by an application service.");
    }
}
