package engine

func (s *Server) execRoutes() {}
