// moments: filled in by its area.
namespace trafficsplit {}  // namespace trafficsplit
