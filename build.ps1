#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, documents and packages the SleapRtc module.

.DESCRIPTION
    Wraps the same dotnet commands CI runs (see README.md):
      Build    dotnet build of the module; lays it out at the repo root (bin/, en-US/) so
               `Import-Module ./SleapRtc.psd1` works.
      Test     dotnet test of the solution (hosted-engine PowerShell tests included), then the
               Pester files tests/*.Tests.ps1 in a child pwsh, with Pester restored from NuGet
               (tests/PesterModule). The last line is "N passed, M failed" over both; the exit
               code is 1 when anything failed. README's test command:
                   dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
      Docs     turns docs/*.md into en-US/SleapRtc.dll-Help.xml and about_SleapRtc.help.txt: with
               PlatyPS (Microsoft.PowerShell.PlatyPS) when installed, else with tools/HelpBuilder.
      Package  a versioned module folder out/SleapRtc/<version>/ ready for Publish-PSResource.

.EXAMPLE
    ./build.ps1 -Task Build, Test

.EXAMPLE
    ./build.ps1 -Task Package -Configuration Release
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Docs', 'Package')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Debug'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot

function Invoke-Dotnet {
    param([Parameter(Mandatory, ValueFromRemainingArguments)] [string[]] $Arguments)
    Write-Host "dotnet $($Arguments -join ' ')" -ForegroundColor Cyan
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments[0]) failed with exit code $LASTEXITCODE." }
}

function Get-ModuleVersion {
    $props = [xml](Get-Content -Raw -LiteralPath (Join-Path $root 'Directory.Build.props'))
    $version = @($props.Project.PropertyGroup | ForEach-Object { $_.Version } | Where-Object { $_ })[0]
    if (-not $version) { throw 'Directory.Build.props has no <Version>.' }
    $version
}

function Invoke-BuildTask {
    Invoke-Dotnet build (Join-Path $root 'src/SleapRtc/SleapRtc.csproj') -c $Configuration
}

function Get-PwshCommandLine {
    # The pwsh running this script, as a command line for a child: `dotnet pwsh` (the local tool) runs as
    # `dotnet <PSHOME>/pwsh.dll`, an installed pwsh as itself.
    $self = [System.Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
    if ([System.IO.Path]::GetFileNameWithoutExtension($self) -eq 'dotnet') { return @($self, (Join-Path $PSHOME 'pwsh.dll')) }
    @($self)
}

function Get-PesterManifest {
    # Pester comes from NuGet (tests/PesterModule pins the version); the package's tools/ folder is the module.
    $project = Join-Path $root 'tests/PesterModule/PesterModule.csproj'
    Invoke-Dotnet restore $project --verbosity quiet
    $version = ([xml](Get-Content -Raw -LiteralPath $project)).Project.PropertyGroup.PesterVersion | Where-Object { $_ } | Select-Object -First 1
    $packages = (& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', ''
    $manifest = Join-Path $packages.Trim() "pester/$version/tools/Pester.psd1"
    if (-not (Test-Path -LiteralPath $manifest)) { throw "Pester $version was restored but $manifest is missing." }
    $manifest
}

function Invoke-XunitSuites {
    # Counts from each test assembly's summary line ("Passed!  - Failed: 0, Passed: 42, Skipped: 0, ...").
    $counts = @{ Passed = 0; Failed = 0 }
    $summary = '^\s*(Passed|Failed)!\s+-\s+Failed:\s+(\d+),\s+Passed:\s+(\d+)'
    Write-Host "dotnet test SleapRtc.sln -c $Configuration" -ForegroundColor Cyan
    & dotnet test (Join-Path $root 'SleapRtc.sln') -c $Configuration | ForEach-Object {
        Write-Host $_
        if ($_ -match $summary) { $counts.Failed += [int]$Matches[2]; $counts.Passed += [int]$Matches[3] }
    }
    # A build error or a crashed test host leaves no summary to count: still a failure.
    if ($LASTEXITCODE -ne 0 -and $counts.Failed -eq 0) { $counts.Failed = 1 }
    $counts
}

function Invoke-PesterFiles {
    $manifest = Get-PesterManifest
    $resultFile = Join-Path ([System.IO.Path]::GetTempPath()) "sleaprtc-pester-$PID.json"
    # A child process, so the module's assemblies and the servers the tests start never outlive the run here.
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$($manifest -replace "'", "''")'
`$c = New-PesterConfiguration
`$c.Run.Path = '$((Join-Path $root 'tests') -replace "'", "''")'
`$c.Run.PassThru = `$true
`$c.Output.Verbosity = 'Detailed'
`$r = Invoke-Pester -Configuration `$c
`$failed = `$r.FailedCount
# A file that fails before its tests are found (a parse error, a failing BeforeDiscovery) counts no test.
if (`$r.Result -ne 'Passed' -and `$failed -eq 0) { `$failed = 1 }
@{ Passed = `$r.PassedCount; Failed = `$failed } | ConvertTo-Json | Set-Content -LiteralPath '$resultFile'
"@
    $pwsh = @(Get-PwshCommandLine)
    $rest = @($pwsh | Select-Object -Skip 1)
    Write-Host "Invoke-Pester tests/*.Tests.ps1 (Pester from $manifest)" -ForegroundColor Cyan
    Remove-Item -LiteralPath $resultFile -ErrorAction SilentlyContinue
    & $pwsh[0] @rest -NoProfile -NonInteractive -Command $script | Out-Host
    if (-not (Test-Path -LiteralPath $resultFile)) { return @{ Passed = 0; Failed = 1 } }
    $counts = Get-Content -Raw -LiteralPath $resultFile | ConvertFrom-Json
    Remove-Item -LiteralPath $resultFile
    @{ Passed = [int]$counts.Passed; Failed = [int]$counts.Failed }
}

function Invoke-TestTask {
    # Both suites always run; the last line counts both, and the exit code is non-zero when anything failed.
    $xunit = Invoke-XunitSuites
    $pester = Invoke-PesterFiles
    Write-Host ("xunit: {0} passed, {1} failed; Pester: {2} passed, {3} failed" -f $xunit.Passed, $xunit.Failed, $pester.Passed, $pester.Failed)
    $failed = $xunit.Failed + $pester.Failed
    Write-Host ("{0} passed, {1} failed" -f ($xunit.Passed + $pester.Passed), $failed)
    if ($failed -gt 0) { exit 1 }
}

function Invoke-DocsTask {
    $helpFolder = Join-Path $root 'en-US'
    $platyPS = Get-Module -ListAvailable Microsoft.PowerShell.PlatyPS | Sort-Object Version -Descending | Select-Object -First 1
    if ($platyPS) {
        Import-Module $platyPS
        $null = New-Item -ItemType Directory -Force -Path $helpFolder
        $pages = Measure-PlatyPSMarkdown -Path (Join-Path $root 'docs/*.md')
        $pages | Where-Object Filetype -Match 'CommandHelp' |
            Import-MarkdownCommandHelp -Path { $_.FilePath } |
            Export-MamlCommandHelp -OutputFolder $helpFolder -Force | Out-Null
        # Export-MamlCommandHelp writes <folder>/<Module>/<Module>-Help.xml; Get-Help wants <Assembly>.dll-Help.xml.
        $written = Get-ChildItem -Recurse -Path $helpFolder -Filter '*-Help.xml' | Where-Object Name -NE 'SleapRtc.dll-Help.xml' | Select-Object -First 1
        if ($written) { Move-Item -Force -LiteralPath $written.FullName -Destination (Join-Path $helpFolder 'SleapRtc.dll-Help.xml') }
        # PlatyPS v2 does not write about_ topics as help text; the bundled tool does.
        Invoke-Dotnet run --project (Join-Path $root 'tools/HelpBuilder') -c $Configuration -- --docs (Join-Path $root 'docs') --out $helpFolder --assembly SleapRtc
    }
    else {
        Write-Verbose 'PlatyPS is not installed: using tools/HelpBuilder.'
        Invoke-Dotnet run --project (Join-Path $root 'tools/HelpBuilder') -c $Configuration -- --docs (Join-Path $root 'docs') --out $helpFolder --assembly SleapRtc
    }
}

function Invoke-PackageTask {
    $version = Get-ModuleVersion
    $target = Join-Path $root "out/SleapRtc/$version"
    if (Test-Path $target) { Remove-Item -Recurse -Force $target }
    $null = New-Item -ItemType Directory -Force -Path $target
    # Allow-listed content only: what Import-Module needs, nothing from the build's scratch folders.
    Copy-Item -LiteralPath (Join-Path $root 'SleapRtc.psd1') -Destination $target
    Copy-Item -Recurse -LiteralPath (Join-Path $root 'bin') -Destination (Join-Path $target 'bin')
    Copy-Item -Recurse -LiteralPath (Join-Path $root 'en-US') -Destination (Join-Path $target 'en-US')
    Get-ChildItem -Recurse -Path (Join-Path $target 'bin') -Filter '*.pdb' | Remove-Item -Force
    foreach ($required in 'SleapRtc.psd1', 'bin/SleapRtc.dll', 'bin/SleapRtc.Model.dll', 'bin/SleapRtc.Loader.dll', 'bin/deps', 'bin/desktop', 'en-US/SleapRtc.dll-Help.xml', 'en-US/about_SleapRtc.help.txt') {
        if (-not (Test-Path (Join-Path $target $required))) { throw "The package lacks $required; run the Build task first." }
    }
    $manifest = Test-ModuleManifest -Path (Join-Path $target 'SleapRtc.psd1')
    if ($manifest.Version.ToString() -ne $version) { throw "Manifest version $($manifest.Version) differs from Directory.Build.props ($version)." }
    Write-Host "Module folder ready for Publish-PSResource: $target" -ForegroundColor Green
    Get-Item $target
}

foreach ($name in $Task) {
    switch ($name) {
        'Build' { Invoke-BuildTask }
        'Test' { Invoke-TestTask }
        'Docs' { Invoke-DocsTask }
        'Package' { if ($Task -notcontains 'Build') { Invoke-BuildTask }; Invoke-PackageTask }
    }
}
