package engine

func (s *Server) containerRoutes() {}
