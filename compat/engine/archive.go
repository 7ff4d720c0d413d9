package engine

func (s *Server) archiveRoutes() {}
