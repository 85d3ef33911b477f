using System.Management.Automation.Language;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The Pester files run in pwsh under `build.ps1 -Task Test`; `dotnet test` alone still checks that they and build.ps1
/// parse, and that every exported cmdlet is exercised by one of them.
/// </summary>
public sealed class ScriptFileTests
{
    public static IEnumerable<object[]> Scripts =>
        new[] { Path.Combine(RepoPaths.Root, "build.ps1") }
            .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Root, "tests"), "*.ps1"))
            .Select(p => new object[] { Path.GetRelativePath(RepoPaths.Root, p) });

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Script_parses_without_errors(string relativePath)
    {
        Parser.ParseFile(Path.Combine(RepoPaths.Root, relativePath), out _, out var errors);
        Assert.True(errors.Length == 0, string.Join("\n", errors.Select(e => $"{e.Extent.StartLineNumber}: {e.Message}")));
    }

    [Fact]
    public void Every_exported_cmdlet_is_exercised_by_a_Pester_file()
    {
        var pester = string.Join("\n", Directory.GetFiles(Path.Combine(RepoPaths.Root, "tests"), "*.Tests.ps1").Select(File.ReadAllText));
        foreach (var command in ModuleCommands.All) Assert.Contains(command, pester);
    }
}
