using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace SleapRtc.Loader;

/// <summary>
/// Keeps the module's libraries and third-party dependencies (BouncyCastle, SQLite, ...) in a private load
/// context fed from bin/deps, so they never clash with copies the host or other modules load (pwsh 7 ships its own
/// System.Text.Json, for one). The cmdlet assembly, this loader and SleapRtc.Model (the public object types users
/// name in scripts) stay in the default context.
/// </summary>
public sealed class PrivateLoadContext : AssemblyLoadContext
{
    public const string ContextName = "SleapRtc";
    private static readonly string[] s_defaultContextAssemblies = { "SleapRtc", "SleapRtc.Model", "SleapRtc.Loader" };

    private static PrivateLoadContext? s_instance;
    private readonly string _depsDirectory;
    private readonly string _binDirectory;

    private PrivateLoadContext(string binDirectory) : base(ContextName, isCollectible: false)
    {
        _binDirectory = binDirectory;
        _depsDirectory = Path.Combine(binDirectory, "deps");
    }

    /// <summary>
    /// Called by the cmdlet assembly's module initializer, before any cmdlet type touches a library type: from then
    /// on the default context hands every name found in bin/deps to the private context.
    /// </summary>
    public static void Install(string binDirectory)
    {
        if (Volatile.Read(ref s_instance) is not null) return;
        if (!Directory.Exists(Path.Combine(binDirectory, "deps"))) return; // not the laid-out module (e.g. a unit-test bin)

        var context = new PrivateLoadContext(binDirectory);
        if (Interlocked.CompareExchange(ref s_instance, context, null) != null) return;
        Default.Resolving += context.ResolveForDefaultContext;
    }

    private Assembly? ResolveForDefaultContext(AssemblyLoadContext requester, AssemblyName name)
    {
        if (IsDefaultContextAssembly(name))
        {
            var path = Path.Combine(_binDirectory, name.Name + ".dll");
            return File.Exists(path) ? Default.LoadFromAssemblyPath(path) : null;
        }
        return File.Exists(DependencyPath(name)) ? LoadFromAssemblyName(name) : null;
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        // The public types must have one identity everywhere, so the model always comes from the default context.
        if (IsDefaultContextAssembly(assemblyName)) return null;
        var path = DependencyPath(assemblyName);
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        foreach (var candidate in NativeCandidates(unmanagedDllName))
        {
            if (File.Exists(candidate)) return LoadUnmanagedDllFromPath(candidate);
        }
        return IntPtr.Zero;
    }

    private static bool IsDefaultContextAssembly(AssemblyName name) => Array.IndexOf(s_defaultContextAssemblies, name.Name) >= 0;

    private string DependencyPath(AssemblyName name) => Path.Combine(_depsDirectory, (name.Name ?? "") + ".dll");

    private IEnumerable<string> NativeCandidates(string name)
    {
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        string os, prefix, extension;
        if (OperatingSystem.IsWindows()) (os, prefix, extension) = ("win", "", ".dll");
        else if (OperatingSystem.IsMacOS()) (os, prefix, extension) = ("osx", "lib", ".dylib");
        else (os, prefix, extension) = (IsMusl() ? "linux-musl" : "linux", "lib", ".so");

        var fileNames = new List<string> { name };
        if (!name.EndsWith(extension, StringComparison.Ordinal)) fileNames.Add(name + extension);
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) fileNames.Add(prefix + name + extension);

        foreach (var fileName in fileNames)
        {
            yield return Path.Combine(_depsDirectory, "runtimes", $"{os}-{arch}", "native", fileName);
            yield return Path.Combine(_depsDirectory, fileName);
        }
    }

    private static bool IsMusl() =>
        OperatingSystem.IsLinux() && File.Exists("/etc/alpine-release");
}
